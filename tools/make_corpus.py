"""Make a deterministic corpus of Markdown notes like the ML knowledge base feedsvc publishes:
mostly Chinese with English terms, one folder per category, YAML front matter in the variants
feedsvc must read, and bodies with headings, code, math, images, lists, links and tables.

    python tools/make_corpus.py OUT_DIR --notes N --seed S [--categories K] [--images]
                                [--jobs J] [--no-mtime] [--force]

Note i comes from its own random.Random(f"{seed}:{i}"): the output depends only on the seed,
K and --images (not on --jobs), and the first 1,000 notes of a 10,000-note corpus are the
1,000-note corpus. Each file's mtime is its note's date plus 0-30 days (--no-mtime: left at
the time of writing). --images writes the tiny PNGs the notes reference. Standard library only.
"""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import itertools
import math
import multiprocessing
import os
import random
import re
import shutil
import struct
import sys
import time
import zlib
from pathlib import Path
from typing import NamedTuple

CATEGORIES = ("Computer Vision", "NLP", "Large Model", "Deep Learning", "Python", "3D Model",
              "Generative Model", "Machine Learning", "Reinforcement Learning", "Multimodal",
              "Graph Learning", "Speech", "Optimization", "Recommender Systems", "MLOps",
              "Data Engineering", "Statistics", "Paper Reading", "Math", "Tools")
TERMS = ("Transformer", "Self-Attention", "LoRA", "RLHF", "DPO", "PPO", "Diffusion Model", "DDPM",
         "DDIM", "ViT", "ResNet", "BatchNorm", "LayerNorm", "AdamW", "KV Cache", "FlashAttention",
         "RoPE", "BERT", "GPT", "CLIP", "NeRF", "3D Gaussian Splatting", "PointNet", "U-Net",
         "GAN", "VAE", "CUDA", "PyTorch", "DDP", "FSDP", "DeepSpeed", "MoE", "BPE", "Beam Search",
         "Q-Learning", "Dropout", "Softmax", "Cross Entropy", "KL Divergence", "YOLO", "DETR",
         "Mask R-CNN", "Stable Diffusion", "ControlNet", "Mamba", "GQA", "vLLM", "Quantization",
         "Knowledge Distillation", "Embedding", "Faiss", "asyncio", "dataclass", "GIL", "numpy",
         "Contrastive Learning", "Tokenizer", "Word2Vec", "LSTM", "GNN", "Triton", "Docker")
CN_WORDS = ("注意力机制", "位置编码", "梯度下降", "损失函数", "归一化", "卷积神经网络", "目标检测",
            "语义分割", "扩散模型", "强化学习", "知识蒸馏", "模型量化", "多进程", "装饰器",
            "显存优化", "数据增强", "微调", "推理加速", "点云", "三维重建", "采样", "评测指标")
TAGS = ("pytorch", "transformer", "cuda", "c++", "diffusion", "llm", "cv", "nlp", "rl", "python",
        "论文", "笔记", "面试", "源码", "部署", "数学", "3d", "多模态", "训练技巧", "optimizer")
TITLES = ("{t} 学习笔记", "{t} 原理详解", "理解 {t}", "{t} vs {u}", "Notes on {t}", "{c}总结",
          "{t}: 从原理到实现", "{c}与 {t}", '如何理解 "{t}"', "{t} & {u} 对比", "{t} #{n} 复现记录",
          "[{t}] 论文阅读", "{t} 中的{c}", "{t} 源码解读", "{c}: 常见问题", "{t} <{u}> 速查")
SENTENCES = (
    "{t} 的核心思想是把输入映射到新的表示空间，再在这个空间里做{c}。",
    "在实际训练中，{t} 对学习率非常敏感，通常配合 warmup 和 cosine decay 一起使用。",
    "和 {u} 相比，{t} 的计算复杂度从 {m} 降到了线性。",
    "论文里给出的目标函数是 {m}，其中每一项都有明确的含义。",
    "简单来说，{t} 就是用更少的参数去拟合同样的分布。",
    "这里容易踩坑：{t} 默认在 GPU 上运行，而 {u} 需要手动调用 `.to(device)`。",
    "实验表明，去掉 {t} 之后指标下降了约 {p} 个点。",
    "可以把 {t} 看作 {u} 的一种特例，当 {m} 时二者等价。",
    "**注意**：{t} 的输出维度必须和 {u} 的输入维度一致。",
    "官方实现见 [{t} 文档]({url})，里面有完整的参数说明。",
    "推理阶段通常会开启 `torch.no_grad()`，显存占用能减少一半左右。",
    "从优化的角度看，{t} 等价于在损失函数上加了一个正则项 {m}。",
    "很多博客把 {t} 和 {u} 混为一谈，其实它们解决的是不同的问题。",
    "Batch size 从 {n} 增加到 {n2} 时吞吐提升明显，但收敛变慢了。",
    "数据量不大时，直接用预训练的 {t} 做 fine-tune 往往效果最好。",
    "复现时发现随机种子会影响 {t} 的结果，需要固定 `seed` 并关闭 cudnn benchmark。",
    "{t} 最早在 {y} 年提出，之后被广泛用于{c}。",
    "这一步的时间复杂度是 {m}，空间复杂度是 $O(n)$。",
    "总结一下：{t} 简单有效，但是对超参数比较敏感。",
    "在{c}任务上，{t} 是目前最常用的 baseline 之一。",
    "In short, {t} trades memory for speed, and the cache grows with the sequence length {m}.",
    "梯度的计算可以写成 {m}，反向传播时由 autograd 自动完成。",
    "{c}部分我主要参考了 {u} 的实现，细节上做了一些简化。",
)
MATH = (r"$O(n^2)$", r"$\hat{y}$", r"$\epsilon_\theta(x_t, t)$", r"$\mathcal{L}_{CE}$",
        r"$W \in \mathbb{R}^{d \times k}$", r"$\sqrt{d_k}$", r"$\beta_t$", r"$p_\theta(x)$",
        r"$\nabla_\theta J(\theta)$", r"$x_{t-1}$", r"$\lambda \|w\|_2^2$", r"$\sigma(x)$")
DISPLAY = (
    r"\mathrm{Attention}(Q, K, V) = \mathrm{softmax}\left(\frac{QK^T}{\sqrt{d_k}}\right)V",
    r"\mathcal{L} = -\sum_{i=1}^{N} y_i \log \hat{y}_i",
    "\\begin{aligned}\nq(x_t \\mid x_{t-1}) &= \\mathcal{N}(x_t; \\sqrt{1-\\beta_t} x_{t-1}, "
    "\\beta_t I) \\\\\n\\bar{\\alpha}_t &= \\prod_{s=1}^{t} (1 - \\beta_s)\n\\end{aligned}",
    r"W' = W + \Delta W = W + BA, \quad B \in \mathbb{R}^{d \times r}",
    r"\theta_{t+1} = \theta_t - \eta \frac{m_t}{\sqrt{v_t} + \epsilon}",
    r"D_{KL}(P \| Q) = \sum_x P(x) \log \frac{P(x)}{Q(x)}",
)
CODE = {
    "python": (
        "import torch\nimport torch.nn as nn\n\n\nclass {cls}(nn.Module):\n"
        "    def __init__(self, dim: int = {dim}, heads: int = {heads}) -> None:\n"
        "        super().__init__()\n        self.qkv = nn.Linear(dim, dim * 3)\n"
        "        self.heads = heads\n\n    def forward(self, x: torch.Tensor) -> torch.Tensor:\n"
        "        b, n, c = x.shape\n"
        "        q, k, v = self.qkv(x).reshape(b, n, 3, self.heads, -1).unbind(2)\n"
        "        return torch.softmax(q @ k.transpose(-2, -1), dim=-1) @ v",
        "import numpy as np\n\n\ndef {fn}(x: np.ndarray, axis: int = -1) -> np.ndarray:\n"
        '    """数值稳定的 softmax"""\n    e = np.exp(x - x.max(axis=axis, keepdims=True))\n'
        "    return e / e.sum(axis=axis, keepdims=True)",
        "optimizer = torch.optim.AdamW(model.parameters(), lr={lr})\nfor step, batch in "
        "enumerate(loader):\n    loss = model(**batch).loss\n    loss.backward()\n"
        "    optimizer.step()\n    optimizer.zero_grad()\n    if step % {n} == 0:\n"
        '        print(f"step {{step}} loss {{loss.item():.4f}}")',
        "from dataclasses import dataclass\n\n\n@dataclass\nclass {cls}Config:\n"
        "    hidden_size: int = {dim}\n    num_heads: int = {heads}\n    dropout: float = 0.1",
        "x = torch.randn({n}, {dim})\nprint(x.shape)  # torch.Size([{n}, {dim}])",
    ),
    "bash": ("pip install {pkg}\nCUDA_VISIBLE_DEVICES=0,1 torchrun --nproc_per_node=2 train.py "
             "--lr {lr}", "nvidia-smi --query-gpu=memory.used --format=csv\ndu -sh ~/.cache"),
    "yaml": ("model:\n  name: {slug}\n  hidden_size: {dim}\n---\ntrainer:\n  max_epochs: {n}",),
    "json": ('{{"model": "{slug}", "lr": {lr}, "batch_size": {n}}}',),
    "": ("epoch 1 | loss 2.3041 | acc 0.112\nepoch 2 | loss 1.8730 | acc 0.356",),
}
LANGUAGES, LANGUAGE_WEIGHTS = ("python", "bash", "yaml", "json", ""), (70, 10, 6, 6, 8)
HEADINGS = ("简介", "背景", "方法", "实验", "总结", "原理", "实现", "问题记录", "参考资料",
            "Motivation", "Overview", "Method", "Experiments", "Implementation", "Summary")
URLS = ("https://pytorch.org/docs/stable/index.html", "https://huggingface.co/docs/transformers",
        "https://arxiv.org/abs/1706.03762", "https://github.com/huggingface/peft",
        "https://docs.python.org/3/library/asyncio.html", "https://github.com/vllm-project/vllm")
START = dt.datetime(2023, 1, 12, tzinfo=dt.timezone.utc)
END = dt.datetime(2026, 1, 11, tzinfo=dt.timezone.utc)
BULK = tuple(dt.datetime(2026, 1, 11, 2, 30, s, tzinfo=dt.timezone.utc) for s in (0, 7, 42))
CST = dt.timezone(dt.timedelta(hours=8))
BLOCKS = ("paragraph", "code", "math", "list", "quote", "table", "links")
BLOCK_WEIGHTS = (50, 16, 10, 10, 5, 4, 5)
CHOICES = {"u": TERMS, "c": CN_WORDS, "m": MATH, "url": URLS, "p": tuple(map(str, range(1, 16))),
           "n": ("8", "16", "32", "64", "128"), "n2": ("256", "512"), "lr": ("1e-4", "3e-4"),
           "y": tuple(map(str, range(2013, 2025))), "dim": ("64", "128", "256", "512", "768"),
           "heads": ("4", "8", "12", "16"), "pkg": ("transformers", "peft", "flash-attn", "vllm"),
           "fn": ("softmax", "stable_softmax", "normalize")}
_QUOTE = re.compile(r"[:#\"&<>\[\]{}]|^[*!|'%@`]")


class Note(NamedTuple):
    """One generated note: where it goes, its text, its mtime and the images it references."""

    folder: str
    stem: str
    text: str
    mtime: int
    images: tuple[str, ...]


class CorpusStats(NamedTuple):
    """What make_corpus() wrote: notes, image files and Markdown bytes."""

    notes: int
    images: int
    bytes: int


class _Fill(dict[str, str]):
    """format_map() mapping that draws each placeholder once per template from the note's rng."""

    def __init__(self, rng: random.Random, topic: str) -> None:
        super().__init__()
        self.rng, self.topic = rng, topic

    def __missing__(self, key: str) -> str:
        if key == "t":
            value = self.topic if self.rng.random() < 0.5 else self.rng.choice(TERMS)
        elif key in CHOICES:
            value = self.rng.choice(CHOICES[key])
        else:  # cls, slug: names made from the topic
            words = re.findall(r"[A-Za-z0-9]+", self.topic)
            value = "-".join(words).lower() if key == "slug" else \
                "".join(w[:1].upper() + w[1:] for w in words if w[0].isalpha()) + "Block"
        self[key] = value
        return value


def fill(rng: random.Random, template: str, topic: str) -> str:
    """The template with its placeholders drawn from rng."""
    return template.format_map(_Fill(rng, topic))


def category_names(k: int) -> list[str]:
    """The K folder names: the fixed ones first, then `Topic NN`."""
    return [CATEGORIES[i] if i < len(CATEGORIES) else f"Topic {i + 1:02}" for i in range(k)]


@functools.cache
def _cum_weights(k: int) -> list[float]:
    return list(itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(k)))


def base36(n: int) -> str:
    """n in base 36 (the unique tail of every file name)."""
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        n, r = divmod(n, 36)
        out = digits[r] + out
        if n == 0:
            return out


def identity(seed: int, i: int, names: list[str]) -> tuple[random.Random, str, str, str, str]:
    """Note i's rng (positioned after these draws), folder, topic term, title and file stem."""
    rng = random.Random(f"{seed}:{i}")
    folder = rng.choices(names, cum_weights=_cum_weights(len(names)))[0]
    topic = rng.choice(TERMS)
    title = fill(rng, rng.choice(TITLES), topic)
    if rng.random() < 0.12:
        stem = rng.choice(CN_WORDS) + rng.choice(("", "笔记", "-总结"))
    else:
        stem = "-".join(re.findall(r"[a-z0-9]+", title.lower())[:4]) or "note"
    return rng, folder, topic, title, f"{stem}-{base36(i)}"


def yaml_text(rng: random.Random, value: str) -> str:
    """A YAML scalar for a title: plain when that reads back the same, else quoted."""
    if not _QUOTE.search(value) and rng.random() < 0.9:
        return value
    if "'" not in value and rng.random() < 0.3:
        return f"'{value}'"
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def date_text(rng: random.Random, when: dt.datetime) -> str:
    """A `date` value: mostly +08:00, some UTC (`Z`/`+00:00`), quoted, or naive local time."""
    r = rng.random()
    if r < 0.85:
        return when.astimezone(CST).isoformat(timespec="seconds")
    if r < 0.93:
        return when.isoformat(timespec="seconds").replace("+00:00", rng.choice(("Z", "+00:00")))
    if r < 0.97:
        return '"' + when.astimezone(CST).isoformat(timespec="seconds") + '"'
    return when.astimezone(CST).strftime("%Y-%m-%d %H:%M:%S")  # naive: the site's time zone


def front_matter(rng: random.Random, title: str, when: dt.datetime, folder: str,
                 names: list[str]) -> str:
    """The `---` block: each key present with its own odds, key order shuffled on some."""
    if rng.random() < 0.005:
        return "---\n\n---\n"
    lines = []
    if rng.random() < 0.95:
        lines.append(f"title: {yaml_text(rng, title)}")
    if rng.random() < 0.95:
        lines.append(f"date: {date_text(rng, when)}")
    if rng.random() < 0.70:
        tags = rng.sample(TAGS, rng.randint(1, 4))
        if rng.random() < 0.5:
            lines.append(f"tags: [{', '.join(tags)}]")
        else:
            indent = rng.choice(("", "  "))
            lines.append("tags:\n" + "\n".join(f"{indent}- {tag}" for tag in tags))
    if rng.random() < 0.40:
        note_id = f"{rng.getrandbits(64):016x}"
        lines.append(f'id: "{note_id}"' if re.fullmatch(r"\d+|0b[01]+", note_id) else
                     f"id: {note_id}")
    if rng.random() < 0.03:
        lines.append(f"category: {rng.choice([n for n in names if n != folder] or ['Misc'])}")
    if rng.random() < 0.02:
        lines.append("draft: true")
    if rng.random() < 0.20:
        rng.shuffle(lines)
    return "---\n" + "".join(line + "\n" for line in lines) + "---\n"


def block(rng: random.Random, kind: str, topic: str) -> str:
    """One Markdown block of the given kind."""
    if kind == "paragraph":
        return "".join(fill(rng, rng.choice(SENTENCES), topic) for _ in range(rng.randint(1, 6)))
    if kind == "code":
        language = rng.choices(LANGUAGES, LANGUAGE_WEIGHTS)[0]
        fence = "~~~" if rng.random() < 0.05 else "```"
        return f"{fence}{language}\n{fill(rng, rng.choice(CODE[language]), topic)}\n{fence}"
    if kind == "math":
        return f"$$\n{rng.choice(DISPLAY)}\n$$"
    if kind == "list":
        style = rng.choice(("-", "*", "1.", "n"))
        items = []
        for k in range(rng.randint(2, 6)):
            marker = f"{k + 1}." if style == "n" else style
            items.append(f"{marker} {fill(rng, rng.choice(SENTENCES), topic)}")
            if rng.random() < 0.15:
                items.append(" " * (len(marker) + 1) + f"- {rng.choice(TERMS)}: {rng.choice(MATH)}")
        return "\n".join(items)
    if kind == "quote":
        return f"> {rng.choice(('💡 ', '⚠️ 注意：', ''))}{fill(rng, rng.choice(SENTENCES), topic)}"
    if kind == "table":
        rows = [f"| {rng.choice(TERMS)} | {rng.randint(5, 900)}M | {rng.uniform(60, 90):.1f} |"
                for _ in range(rng.randint(2, 5))]
        return "| 模型 | 参数量 | Top-1 (%) |\n| --- | ---: | ---: |\n" + "\n".join(rows)
    url = rng.choice(URLS)
    return rng.choice((f"参考：[{topic} 官方文档]({url})", f"<{url}>", f"🔖 {url}",
                       f"原文链接：<https://arxiv.org/abs/{rng.randint(1801, 2412)}."
                       f"{rng.randint(10000, 19999)}>"))


def body(rng: random.Random, i: int, seed: int, names: list[str], topic: str, title: str,
         stem: str) -> tuple[str, tuple[str, ...]]:
    """Markdown body of about a long-tailed 1-20 KB, and the image files it references."""
    target = min(20_000, max(1_000, int(rng.lognormvariate(math.log(3600), 0.65))))
    numbered = rng.random() < 0.3
    blocks = [f"# {title}"] if rng.random() < 0.3 else []
    blocks.append(block(rng, "paragraph", topic))
    size, section = 0, 0
    while size < target:
        if rng.random() < 0.3:
            section += 1
            name = rng.choice(HEADINGS + (f"{topic} 的{rng.choice(CN_WORDS)}",))
            level = "###" if section > 1 and rng.random() < 0.3 else "##"
            blocks.append(f"{level} {section}. {name}" if numbered else f"{level} {name}")
        blocks.append(block(rng, rng.choices(BLOCKS, BLOCK_WEIGHTS)[0], topic))
        size += len(blocks[-1].encode()) + 2
    images = tuple(f"{stem}-{k}.png" for k in range(rng.choices((0, 1, 2, 3), (30, 35, 22, 13))[0]))
    for k, name in enumerate(images):
        where = rng.randint(1, len(blocks))
        if rng.random() < 0.05:
            blocks.insert(where, f'<img src="images/{name}" alt="图{k + 1}" style="zoom:50%;" />')
        else:
            blocks.insert(where, f"![{rng.choice(('fig', f'图{k + 1}', topic))}](images/{name})")
    if i > 0 and rng.random() < 0.15:
        other = identity(seed, rng.randrange(i), names)[4]
        blocks.append(f"相关笔记：[[{other}]]" if rng.random() < 0.7 else f"见 [[{other}|这篇]]")
    return "\n\n".join(blocks) + "\n", images


def build_note(seed: int, i: int, names: list[str]) -> Note:
    """Note i of the corpus for this seed and these category names."""
    rng, folder, topic, title, stem = identity(seed, i, names)
    if rng.random() < 0.10:
        when = rng.choice(BULK)  # the "bulk import" day: three timestamps, many exact ties
    else:
        span = (END - START).total_seconds()
        when = START + dt.timedelta(seconds=int(span * rng.random() ** 0.75))
    mtime = int(when.timestamp()) + rng.randrange(30 * 86400)
    header = front_matter(rng, title, when, folder, names)
    text, images = body(rng, i, seed, names, topic, title, stem)
    return Note(folder, stem, f"{header}\n{text}", mtime, images)


def tiny_png(rng: random.Random) -> bytes:
    """A valid RGB PNG of a few pixels (about 100 bytes)."""
    w, h = rng.randint(1, 4), rng.randint(1, 4)
    color = bytes(rng.getrandbits(8) for _ in range(3))
    raw = b"".join(b"\x00" + color * w for _ in range(h))

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"tEXt", b"Comment\x00make_corpus.py") + chunk(b"IDAT", zlib.compress(raw, 9))
            + chunk(b"IEND", b""))


def _write_range(task: tuple[Path, int, int, int, int, bool, bool]) -> CorpusStats:
    """Write notes start..stop-1 (and their images); one task of a worker process."""
    out, seed, start, stop, k, images, set_mtime = task
    names = category_names(k)
    notes = pngs = size = 0
    for i in range(start, stop):
        note = build_note(seed, i, names)
        path = out / note.folder / f"{note.stem}.md"
        data = note.text.encode("utf-8")
        path.write_bytes(data)
        written = [path]
        notes, size = notes + 1, size + len(data)
        if images:
            for n, name in enumerate(note.images):
                image = out / note.folder / "images" / name
                image.write_bytes(tiny_png(random.Random(f"{seed}:{i}:png{n}")))
                written.append(image)
            pngs += len(note.images)
        if set_mtime:
            for p in written:
                os.utime(p, (note.mtime, note.mtime))
    return CorpusStats(notes, pngs, size)


def make_corpus(out_dir: str | Path, notes: int, seed: int, *, categories: int = 10,
                images: bool = False, jobs: int = 1, set_mtime: bool = True) -> CorpusStats:
    """Write `notes` notes below out_dir (created if needed; existing files are overwritten)."""
    if notes < 0 or categories < 1 or jobs < 1:
        raise ValueError("notes must be >= 0, categories and jobs >= 1")
    out = Path(out_dir)
    for name in category_names(categories):
        (out / name / "images" if images else out / name).mkdir(parents=True, exist_ok=True)
    step = max(50, min(1000, notes // (jobs * 8) + 1))
    tasks = [(out, seed, a, min(a + step, notes), categories, images, set_mtime)
             for a in range(0, notes, step)]
    if jobs == 1 or len(tasks) < 2:
        results = [_write_range(t) for t in tasks]
    else:
        methods = multiprocessing.get_all_start_methods()
        context = multiprocessing.get_context("fork" if "fork" in methods else None)
        with context.Pool(jobs) as pool:
            results = pool.map(_write_range, tasks, chunksize=1)
    return CorpusStats(*(sum(col) for col in zip(*results))) if results else CorpusStats(0, 0, 0)


def main(argv: list[str] | None = None) -> int:
    """The command line (see the module docstring)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--notes", type=int, default=1000, help="how many notes (default 1000)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--categories", type=int, default=10, help="category folders (default 10)")
    parser.add_argument("--images", action="store_true", help="write the PNGs notes reference")
    parser.add_argument("--jobs", type=int, default=1, help="processes (output is the same)")
    parser.add_argument("--no-mtime", action="store_true", help="leave file mtimes at now")
    parser.add_argument("--force", action="store_true", help="replace a non-empty OUT_DIR")
    args = parser.parse_args(argv)
    out: Path = args.out_dir
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        if not args.force:
            parser.error(f"{out} exists and is not empty (--force replaces it)")
        if out.resolve() in (Path("/"), Path.home().resolve()):
            parser.error(f"refusing to delete {out}")
        if out.is_dir():
            shutil.rmtree(out)
        else:
            out.unlink()
    started = time.monotonic()
    stats = make_corpus(out, args.notes, args.seed, categories=args.categories,
                        images=args.images, jobs=args.jobs, set_mtime=not args.no_mtime)
    print(f"{out}: {stats.notes} notes ({stats.bytes / 1e6:.1f} MB), {stats.images} images, "
          f"{time.monotonic() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
