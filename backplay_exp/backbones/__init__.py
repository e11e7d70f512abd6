"""DLM backbones behind one interface: the in-repo `tiny`/SMDM model and HF adapters."""
