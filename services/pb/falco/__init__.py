"""Generated from protos/falco (package names falco.*)."""
