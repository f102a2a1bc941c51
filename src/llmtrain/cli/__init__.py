"""The command line: one thin module per command (parse → config → call the library)."""
