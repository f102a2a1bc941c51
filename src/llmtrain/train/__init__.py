"""Training: `RunConfig` and its loader, presets, precision, and the `Trainer` loop."""
