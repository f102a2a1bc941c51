"""One module per model family, each defining `FAMILY` (a `llmtrain.models.hf.base.Family`);
`llmtrain.models.hf` finds them all, so adding a family is adding a file here."""
