"""The chat template (ChatML) and its special tokens, stored with a fine-tuned run.

A conversation is laid out as `<|im_start|>{role}\n{content}<|im_end|>\n` per turn. The two
chat tokens are taken from the tokenizer when it has them (e.g. a Qwen tokenizer), else
appended after its vocabulary (id V, V + 1, as objectives append theirs) and the model's
embeddings are resized. Each piece is encoded on its own, so training and `generate --chat`
see the same ids, and the roles' spans are known exactly: `render` returns the ids and a
mask of the assistant tokens (content + closing <|im_end|>) that SFT learns.
`CHAT_TEMPLATE` is the same layout in Jinja, written into an exported HF tokenizer.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from llmtrain.errors import ConfigError, DataError
from llmtrain.utils.io import atomic_write_json

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
ROLES = ("system", "user", "assistant")
CHAT_FILE = "chat.json"
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + '\\n' + "
    "message['content'] + '<|im_end|>' + '\\n' }}{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)


@dataclass
class ChatFormat:
    im_start: int
    im_end: int
    added: int  # how many ids were appended after the tokenizer's vocabulary

    def save(self, run_dir: str | Path) -> None:
        atomic_write_json(
            Path(run_dir) / CHAT_FILE,
            {
                "tokens": {IM_START: self.im_start, IM_END: self.im_end},
                "added": self.added,
                "template": CHAT_TEMPLATE,
            },
        )

    @classmethod
    def load(cls, run_dir: str | Path) -> ChatFormat:
        path = Path(run_dir) / CHAT_FILE
        try:
            d = json.loads(path.read_text(encoding="utf-8"))
            return cls(int(d["tokens"][IM_START]), int(d["tokens"][IM_END]), int(d["added"]))
        except (OSError, KeyError, ValueError) as e:
            raise ConfigError(
                f"{path}: no chat format ({e}); this run was not fine-tuned with --task sft"
            ) from None


def _token_id(tokenizer, text: str) -> int | None:
    backend = getattr(tokenizer, "backend", None)  # a HF `tokenizers` backend knows tokens
    return backend.token_to_id(text) if backend is not None else None


def chat_format(tokenizer, allow_add: bool, where: str) -> ChatFormat:
    """The chat token ids for `tokenizer`: its own when it has both, else appended ids.
    `allow_add` False (finetune.add_chat_tokens=false) makes a missing token an error."""
    start, end = _token_id(tokenizer, IM_START), _token_id(tokenizer, IM_END)
    if start is not None and end is not None:
        return ChatFormat(start, end, 0)
    if not allow_add:
        raise ConfigError(
            f"the tokenizer of {where} has no chat tokens {IM_START} / {IM_END} and "
            "finetune.add_chat_tokens=false forbids adding them: set "
            "finetune.add_chat_tokens=true (appends 2 ids and resizes the embeddings)"
        )
    V = tokenizer.vocab_size
    return ChatFormat(V, V + 1, 2)


def check_messages(messages: object, where: str) -> list[dict[str, str]]:
    """`messages` as a list of {role, content}; DataError naming `where` and the bad turn."""
    if not isinstance(messages, list) or not messages:
        raise DataError(f"{where}: 'messages' must be a non-empty list of {{role, content}}")
    out = []
    for i, m in enumerate(messages):
        if not isinstance(m, dict) or "role" not in m or "content" not in m:
            raise DataError(f"{where}: messages[{i}] must be an object with 'role' and 'content'")
        if m["role"] not in ROLES:
            raise DataError(
                f"{where}: unknown role {m['role']!r} in messages[{i}]; use one of "
                f"{', '.join(ROLES)} (rename it, e.g. 'bot' -> 'assistant')"
            )
        out.append({"role": m["role"], "content": str(m["content"])})
    if not any(m["role"] == "assistant" for m in out):
        raise DataError(f"{where}: no assistant turn in 'messages'; nothing to learn")
    return out


def render(
    tokenizer, fmt: ChatFormat, messages: list[dict[str, str]], generation_prompt: bool = False
) -> tuple[list[int], list[bool]]:
    """Token ids of the conversation and, per id, whether SFT learns it (assistant content
    and its <|im_end|>). `generation_prompt` appends `<|im_start|>assistant\n`."""
    ids: list[int] = [tokenizer.bos_id]
    learn: list[bool] = [False]

    def add(piece: list[int], flag: bool) -> None:
        ids.extend(piece)
        learn.extend([flag] * len(piece))

    for m in messages:
        is_asst = m["role"] == "assistant"
        add([fmt.im_start, *tokenizer.encode(m["role"] + "\n")], False)
        add([*tokenizer.encode(m["content"]), fmt.im_end], is_asst)
        add(tokenizer.encode("\n"), False)
    if generation_prompt:
        add([fmt.im_start, *tokenizer.encode("assistant\n")], False)
    return ids, learn
