"""`llmtrain export CHECKPOINT --format hf --out DIR [--target NAME]`:
write a run (or one checkpoint) as a Hugging Face directory with its tokenizer, and verify
both: logits against transformers, token ids against AutoTokenizer."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="export a trained model (Hugging Face)", description=__doc__)
    p.add_argument("checkpoint", help="RUN_DIR (latest checkpoint) or a checkpoint directory")
    p.add_argument("--format", choices=["hf"], default="hf")
    p.add_argument("--out", required=True, help="directory to write")
    p.add_argument(
        "--target",
        default=None,
        choices=[
            "gpt2",
            "llama",
            "mixtral",
            "bert",
            "bert_pretraining",
            "roberta",
            "electra",
            "t5",
        ],
        help="HF architecture (default: model.hf_target, else inferred from the options); "
        "checked against the model's options. ELECTRA also writes its generator/",
    )
    p.add_argument("--no-tokenizer", action="store_true", help="write the weights only")
    p.add_argument(
        "--merge-lora",
        action="store_true",
        help="a LoRA fine-tune: fold the adapters into the base weights and write a plain "
        "llmtrain run to --out (the HF export always merges)",
    )
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from llmtrain.checkpoint.inference import load_trained
    from llmtrain.export import export_hf
    from llmtrain.export.finetuned import add_chat_template, merge_for_export, merged_run

    loaded = load_trained(args.checkpoint, best=True)
    if args.merge_lora:
        ckpt = merged_run(loaded, args.out)
        print(
            json.dumps(
                {"out": args.out, "checkpoint": str(ckpt), "merged_from": str(loaded.checkpoint)}
            )
        )
        return 0
    tok = None if args.no_tokenizer else loaded.tokenizer
    model = merge_for_export(loaded.model)  # a LoRA run exports merged
    res = export_hf(model, args.out, tokenizer=tok, target=args.target)
    chat = loaded.checkpoint.parent.parent / "chat.json"
    if tok is not None and chat.is_file():  # an SFT run: chat tokens + template
        from llmtrain.finetune.chat import CHAT_TEMPLATE, ChatFormat

        add_chat_template(args.out, ChatFormat.load(chat.parent), CHAT_TEMPLATE)
        res["chat_template"] = True
    print(f"max abs logit difference vs transformers: {res['max_abs_diff']:.3g}")
    if "generator_max_abs_diff" in res:
        print(f"  ELECTRA generator (generator/): {res['generator_max_abs_diff']:.3g}")
    print(json.dumps({"out": args.out, **res}))
    return 0
