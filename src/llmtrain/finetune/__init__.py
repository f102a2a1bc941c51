"""Fine-tuning: sequence classification and instruction/chat SFT, full or LoRA, as data +
objective + an optional LoRA transform over the one training loop (`train.Trainer`).

`config` (the `finetune` section), `tables` (CSV/TSV/JSONL/Parquet rows), `labels` (label
maps, stratified split), `datasets` (classification data sources), `chat` (template + chat
tokens), `sft_data`, `task` (what the Trainer takes), `metrics`, `api.finetune`.
"""

from llmtrain import callable_module

callable_module(__name__)  # `llmtrain.finetune(...)` is the API's `finetune` (`llmtrain.api`)
