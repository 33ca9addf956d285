"""AdGen benchmark: python -m bench."""
