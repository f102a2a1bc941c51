"""Monitoring: `RunMonitor` (metrics.jsonl + TensorBoard/W&B/MLflow + in-loop probes), the
console progress line, and what reads a run directory: dashboard, HTML report, diagnosis."""
