"""The Falco rules language (loader, condition compiler, fields, outputs) and the rules workers."""
