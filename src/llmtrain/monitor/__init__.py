"""Monitoring: the always-on JSONL metrics log, the console progress line, throughput/MFU."""
