"""One command per dataset: ``python -m data_scripts.<name> --root DIR`` downloads, verifies and prepares it."""
