"""The named search spaces (YAML). A package only so that setuptools ships the files."""
