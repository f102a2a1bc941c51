"""Shared by the notebooks: where they write and how big they run (environment variables with
small defaults, so CI executes them top to bottom in seconds), and `sample_corpus`, a small
English + Chinese corpus: ../shared/data's Tiny Shakespeare and Chinese Wikipedia when that
folder exists, else the Python documentation every Python carries plus a few classical
Chinese poems; a handful of dirty documents are added so the cleaning steps have work to do.

    LLMTRAIN_NB_WORK       output folder (default: runs/notebooks in the repository)
    LLMTRAIN_NB_SHARED     the public corpora folder (default: ../shared/data)
    LLMTRAIN_NB_MAX_BYTES  corpus size in bytes (default 600000)
    LLMTRAIN_NB_STEPS      training steps per run (default 300: minutes on a laptop CPU)
    LLMTRAIN_NB_TRIALS     trials of the notebook's sweep (default 8)
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("LLMTRAIN_NB_SHARED", ROOT.parent / "shared" / "data"))
WORK = Path(os.environ.get("LLMTRAIN_NB_WORK", ROOT / "runs" / "notebooks"))
MAX_BYTES = int(os.environ.get("LLMTRAIN_NB_MAX_BYTES", 600_000))
STEPS = int(os.environ.get("LLMTRAIN_NB_STEPS", 300))
TRIALS = int(os.environ.get("LLMTRAIN_NB_TRIALS", 8))

# public-domain Tang poems: the Chinese part when ../shared/data is absent
ZH_POEMS = [
    "静夜思\n李白\n床前明月光，疑是地上霜。\n举头望明月，低头思故乡。",
    "春晓\n孟浩然\n春眠不觉晓，处处闻啼鸟。\n夜来风雨声，花落知多少。",
    "登鹳雀楼\n王之涣\n白日依山尽，黄河入海流。\n欲穷千里目，更上一层楼。",
    "相思\n王维\n红豆生南国，春来发几枝。\n愿君多采撷，此物最相思。",
    "江雪\n柳宗元\n千山鸟飞绝，万径人踪灭。\n孤舟蓑笠翁，独钓寒江雪。",
    "春望\n杜甫\n国破山河在，城春草木深。\n感时花溅泪，恨别鸟惊心。\n烽火连三月，家书抵万金。\n"
    "白头搔更短，浑欲不胜簪。",
    "望庐山瀑布\n李白\n日照香炉生紫烟，遥看瀑布挂前川。\n飞流直下三千尺，疑是银河落九天。",
    "早发白帝城\n李白\n朝辞白帝彩云间，千里江陵一日还。\n两岸猿声啼不住，轻舟已过万重山。",
]


def english_docs(max_bytes: int) -> list[str]:
    """Scenes of Tiny Shakespeare, or the stdlib's documentation topics and modules."""
    path = SHARED / "tinyshakespeare.txt"
    if path.is_file():
        parts = path.read_text(encoding="utf-8")[:max_bytes].split("\n\n")
        return ["\n\n".join(parts[i : i + 12]) for i in range(0, len(parts), 12)]
    from llmtrain.data.builtin import builtin_corpus_documents

    docs, size = [], 0
    for doc in builtin_corpus_documents("python"):
        if doc.id.startswith("pydoc-topic/") or len(docs) < 5:
            docs.append(doc.text)
            size += len(doc.text.encode())
        if size >= max_bytes:
            break
    return docs


def chinese_docs(max_bytes: int) -> list[str]:
    """Chinese Wikipedia paragraphs (CMRC 2018 / DRCD), or the poems above."""
    path = SHARED / "zh_wiki" / "zh_wiki_contexts.jsonl"
    if not path.is_file():
        return list(ZH_POEMS)
    docs, size = [], 0
    with open(path, encoding="utf-8") as f:
        for line in f:
            docs.append(json.loads(line)["text"])
            size += len(docs[-1].encode())
            if size >= max_bytes:
                break
    return docs


def dirty_docs(en: list[str], zh: list[str]) -> list[str]:
    """What real crawls contain: copies, fragments, mojibake, PII, boilerplate."""
    return [
        en[0],  # an exact duplicate
        zh[0],  # a Chinese duplicate
        en[1].replace("the", "thee", 3),  # a near duplicate
        "ok",  # too short
        "Ã©tÃ© cafÃ© rÃ©sumÃ© naÃ¯ve " * 8,  # UTF-8 read as Latin-1 (fixed, then filtered)
        "Contact john.doe@example.com or call +1 415 555 0100 today.\n" + en[2],  # PII
        "联系邮箱 zhang.san@example.cn，电话 138 0013 8000。\n" + zh[-1],  # Chinese PII
        "Click here to subscribe! " * 30,  # boilerplate repetition
    ]


def sample_corpus(folder: str | Path, max_bytes: int = MAX_BYTES) -> Path:
    """Write folder/corpus.jsonl ({"text", "lang"} per line) once; returns the folder."""
    folder = Path(folder)
    out = folder / "corpus.jsonl"
    if out.is_file():
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    en, zh = english_docs(max_bytes * 2 // 3), chinese_docs(max_bytes // 3)
    rows = [(t, "en") for t in en] + [(t, "zh") for t in zh]
    rows += [(t, "dirty") for t in dirty_docs(en, zh)]
    with open(out, "w", encoding="utf-8") as f:
        for text, lang in rows:
            f.write(json.dumps({"text": text, "lang": lang}, ensure_ascii=False) + "\n")
    return folder


def source() -> str:
    return "../shared/data" if (SHARED / "tinyshakespeare.txt").is_file() else "builtin"


def read_jsonl(path: str | Path) -> list[dict]:
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
