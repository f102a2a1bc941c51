"""Small shared helpers with no llmtrain dependencies: atomic file writes and checksums
(`utils.io`), and a rich progress-bar factory (`utils.progress`)."""
