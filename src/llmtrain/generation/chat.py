"""Chat with a model fine-tuned by `llmtrain finetune --task sft`: the run's chat format
renders the conversation with the generation prompt, sampling stops at <|im_end|> (or any
chat/end token), and the reply streams as text. `chat_reply` is one turn; the CLI's
`generate --chat` loops over it on a terminal."""

from __future__ import annotations

from collections.abc import Iterator

from llmtrain.finetune.chat import ChatFormat, render
from llmtrain.generation.generate import generate_tokens, stream_decode


def chat_reply(
    model,
    tokenizer,
    fmt: ChatFormat,
    messages: list[dict[str, str]],
    max_new_tokens: int = 200,
    temperature: float = 0.0,
    top_k: int | None = None,
    top_p: float | None = None,
    seed: int | None = None,
) -> Iterator[str]:
    """Stream the assistant's next reply to `messages` (the template applied)."""
    ids, _ = render(tokenizer, fmt, messages, generation_prompt=True)
    room = model.cfg.block_size - len(ids)
    ids = ids[-model.cfg.block_size + 1 :] if room <= 1 else ids  # keep the latest turns
    stops = {fmt.im_end, fmt.im_start, tokenizer.eos_id}
    tokens = generate_tokens(
        model,
        ids,
        min(max_new_tokens, model.cfg.block_size - len(ids)),
        temperature=temperature,
        top_k=top_k,
        top_p=top_p,
        seed=seed,
        stop_ids=stops,
        bos_id=tokenizer.bos_id,
    )
    text_ids = [i for i in ids if i < tokenizer.vocab_size]  # chat ids are no text
    yield from stream_decode(tokenizer, (t for t in tokens if t < tokenizer.vocab_size), text_ids)
