"""Pipeline stages: each reads the recipe, skips itself when its fingerprint is unchanged, and
writes its output folder atomically."""
