"""Small helpers shared by the tasks (instantiation, devices)."""
