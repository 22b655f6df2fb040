"""Writes a Hugging Face tokenizer folder from a GGUF file's own tokenizer.

The GGUF holds a SentencePiece-style BPE vocabulary: pieces, scores (merge
priority) and token types. The merges are rebuilt from the scores the way
SentencePiece applies them (a pair merges when the joined piece is in the
vocabulary; higher score first), with byte fallback, so the folder tokenizes
as the server does. Uses only the `gguf` and `tokenizers` packages.

usage: python gguf_tokenizer.py MODEL.gguf OUT_DIR
"""
import json
import os
import sys

from gguf import GGUFReader
from tokenizers import Tokenizer, decoders, models, normalizers

model_path, out = sys.argv[1], sys.argv[2]
reader = GGUFReader(model_path)


def field(name, default=None):
    f = reader.fields.get(name)
    if f is None:
        return default
    values = [f.parts[i] for i in f.data]
    if f.types and f.types[0].name == "STRING" or (len(f.types) > 1 and f.types[-1].name == "STRING"):
        values = [bytes(v).decode("utf-8") for v in values]
    else:
        values = [v.tolist()[0] if hasattr(v, "tolist") else v for v in values]
    return values if f.types[0].name == "ARRAY" else values[0]


kind = field("tokenizer.ggml.model")
if kind not in ("llama", "gemma"):
    sys.exit(f"{model_path}: tokenizer.ggml.model is {kind!r}; this converter handles SentencePiece BPE (llama/gemma)")
tokens = field("tokenizer.ggml.tokens")
scores = field("tokenizer.ggml.scores")
types = field("tokenizer.ggml.token_type")
vocab = {t: i for i, t in enumerate(tokens)}
NORMAL, UNKNOWN, CONTROL, USER_DEFINED, UNUSED, BYTE = 1, 2, 3, 4, 5, 6

merges = []
for piece, idx in vocab.items():
    if types[idx] != NORMAL or len(piece) < 2:
        continue
    for cut in range(1, len(piece)):
        left, right = piece[:cut], piece[cut:]
        if left in vocab and right in vocab:
            merges.append((scores[idx], vocab[left], vocab[right], left, right))
merges.sort(key=lambda m: (-m[0], m[1], m[2]))

unk_id = field("tokenizer.ggml.unknown_token_id", 3)
bpe = models.BPE(
    vocab=vocab,
    merges=[(m[3], m[4]) for m in merges],
    unk_token=tokens[unk_id],
    fuse_unk=True,
    byte_fallback=True,
)
tok = Tokenizer(bpe)
add_space_prefix = field("tokenizer.ggml.add_space_prefix", False)
steps = [normalizers.Replace(" ", "\u2581")]
if add_space_prefix:
    steps.insert(0, normalizers.Prepend("\u2581"))
tok.normalizer = normalizers.Sequence(steps)
tok.decoder = decoders.Sequence(
    [decoders.Replace("\u2581", " "), decoders.ByteFallback(), decoders.Fuse()]
    + ([decoders.Strip(" ", 1, 0)] if add_space_prefix else [])
)
special = [
    {"id": i, "content": t, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False, "special": True}
    for i, t in enumerate(tokens)
    if types[i] in (CONTROL, USER_DEFINED) and i < 300
]
tok.add_special_tokens([t["content"] for t in special])

os.makedirs(out, exist_ok=True)
tok.save(os.path.join(out, "tokenizer.json"))
name = lambda key: tokens[field(key)] if field(key) is not None else None  # noqa: E731
config = {
    "tokenizer_class": "PreTrainedTokenizerFast",
    "bos_token": name("tokenizer.ggml.bos_token_id"),
    "eos_token": name("tokenizer.ggml.eos_token_id"),
    "unk_token": tokens[unk_id],
    "pad_token": name("tokenizer.ggml.padding_token_id"),
    "add_bos_token": bool(field("tokenizer.ggml.add_bos_token", True)),
    "model_max_length": int(field(f"{field('general.architecture')}.context_length", 8192)),
}
template = field("tokenizer.chat_template")
if template:
    config["chat_template"] = template
with open(os.path.join(out, "tokenizer_config.json"), "w") as f:
    json.dump({k: v for k, v in config.items() if v is not None}, f, indent=2)
print(f"tokenizer: {len(tokens)} pieces, {len(merges)} merges, chat template: {bool(template)} -> {out}")
