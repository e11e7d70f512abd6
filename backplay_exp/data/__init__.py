"""Tokenisation, SFT datasets and collation."""
