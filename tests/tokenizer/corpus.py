"""Deterministic multilingual test corpus for the tokenizer (no downloads).

build_corpus() returns a list of documents (str) of at least `min_bytes` UTF-8 bytes in total,
the same on every run of the same Python installation: prose, source code read from Python's
own standard library, CJK, Arabic, emoji sequences, decomposed text that NFC changes, odd
whitespace, long digit runs and text that contains (or nearly contains) special tokens.
"""

import random
import sysconfig
import unicodedata
from pathlib import Path

WORDS = (
    "the of and to in is you that it he was for on are as with his they I at be this have from "
    "or one had by word but not what all were we when your can said there use an each which she "
    "do how their if will up other about out many then them these so some her would make like "
    "him into time has look two more write go see number no way could people my than first water "
    "been call who oil its now find long down day did get come made may part over new sound take "
    "only little work know place year live me back give most very after thing our just name good "
    "sentence man think say great where help through much before line right too mean old any same "
    "tell boy follow came want show also around form three small set put end does another well "
    "large must big even such because turn here why ask went men read need land different home us "
    "move try kind hand picture again change off play spell air away animal house point page letter "
    "mother answer found study still learn should America world Tokenizer GPU NVFP4 Hopper naïve "
    "café résumé coöperate Zürich façade jalapeño São Paulo Kraków Ærøskøbing"
).split()
CONTRACTIONS = ["'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T", "'RE", "'Ve", "'LL", "'D"]
PUNCT = [".", ",", ";", ":", "!", "?", "...", " -", " —", " (", ")", "\"", "'", "“", "”", "«", "»"]

CHINESE = (
    "自然语言处理是人工智能和语言学领域的分支学科。此领域探讨如何处理及运用自然语言；"
    "自然语言处理包括多方面和步骤，基本有认知、理解、生成等部分。量化模型在显卡上运行得更快，"
    "我们使用四位浮点数存储权重，键值缓存使用八位浮点数。北京、上海、广州、深圳的天气都很好！"
)
JAPANESE = (
    "吾輩は猫である。名前はまだ無い。どこで生れたかとんと見当がつかぬ。何でも薄暗いじめじめした所で"
    "ニャーニャー泣いていた事だけは記憶している。カタカナとひらがなと漢字を混ぜて書きます。"
    "ｶﾀｶﾅの半角もあります。東京スカイツリーは634メートルです。"
)
ARABIC = (
    "اللغة العربية هي أكثر اللغات السامية تحدثاً، وإحدى أكثر اللغات انتشاراً في العالم. "
    "يتحدثها أكثر من ٤٦٧ مليون نسمة. مَرْحَبًا بِكُمْ فِي عَالَمِ الذَّكَاءِ الاصْطِنَاعِيِّ."
)
OTHER_SCRIPTS = [
    "Привет, мир! Съешь же ещё этих мягких французских булок, да выпей чаю.",
    "Γειά σου Κόσμε· ἐν ἀρχῇ ἦν ὁ λόγος, καὶ ὁ λόγος ἦν πρὸς τὸν θεόν.",
    "שלום עולם! זהו מבחן של טקסט בעברית עם ניקוד: שָׁלוֹם.",
    "नमस्ते दुनिया! हिन्दी भाषा देवनागरी लिपि में लिखी जाती है। क्षत्रिय",
    "สวัสดีชาวโลก ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ",
    "안녕하세요 세계! 한국어는 한글로 씁니다. 훈민정음",
    "Tiếng Việt có dấu: Điều này thật tuyệt vời, người ta nói vậy.",
    "ქართული ენა, Հայերեն լեզու, ትግርኛ, ᓀᐦᐃᔭᐍᐏᐣ, ᚠᚢᚦᚨᚱᚲ",
]
EMOJI = [
    "😀", "👍", "👍🏽", "👍🏿", "👨‍👩‍👧‍👦", "🧑🏻‍💻", "👩‍❤️‍💋‍👨", "🏳️‍🌈", "🏴‍☠️", "🇺🇸", "🇯🇵",
    "🇩🇪", "1️⃣", "#️⃣", "❤️", "☺︎", "🫠", "🫶🏼", "🦀", "🐍", "🚀", "✨", "🤷‍♀️", "🙇🏾‍♂️", "🧬",
    "🏴󠁧󠁢󠁳󠁣󠁴󠁿",
]
SPECIAL_STRINGS = [
    "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<think>", "</think>", "<tool_call>",
    "</tool_call>", "<|fim_prefix|>", "<|vision_pad|>", "<start_of_turn>", "<end_of_turn>",
    "<bos>", "<eos>", "<pad>", "<unk>", "<mask>", "<start_of_image>", "<image_soft_token>",
    "<unused0>", "<unused17>", "<unused6241>", "[multimodal]", "<b>", "</div>", "<code>",
    "<0x41>", "<0xE4>", "▁", "▁▁▁", "<|im_", "<|im_end", "|im_end|>", "<start_of_", "<end_of_tur",
    "<<|im_end|>>", "<|im_start|><|im_start|>", "<think></think>", "<|IM_END|>", "<Think>",
    "<|im_start|>assistant\n", "<start_of_turn>model\n",
]
WHITESPACE = [
    " ", "  ", "   ", "\t", "\t\t", "\n", "\n\n", "\n\n\n\n", "\r\n", "\r\n\r\n", "\r", " \n",
    "\n ", " \t \n", "\u00a0", "\u2003", "\u3000", "\u2028", "\u2029", "\u0085", "\u000b",
    "\u000c", "\u200b", "\ufeff", "\u180e", "\u1680", "\u202f", "\u205f", "    ", " " * 17,
    "\t \t", "\u00a0 ", " \u00a0", "\u001c", "\u001f",
]
# Sequences that NFC changes: decomposed letters, marks out of canonical order, Hangul jamo,
# singletons, and marks that must not compose across a blocker.
COMBINING = [
    "e\u0301", "a\u0308", "o\u0302", "n\u0303", "c\u0327", "u\u0308\u0301", "a\u0323\u0301",
    "a\u0301\u0323", "A\u030a", "\u212b", "\u2126", "\u1100\u1161", "\u1100\u1161\u11a8",
    "\u1112\u1161\u11ab", "e\u0301\u0301", "\u0301", "\u0301e", "i\u0307", "\u0958", "\u0915\u093c",
    "\u05e9\u05bc\u05c1", "\u0627\u0653", "\u0648\u0654", "\u30ab\u3099", "\u304b\u309a",
    "\u1e0b\u0323", "q\u0307\u0323", "\u0041\u030a\u0301", "\ufb01", "\u00bd", "\u2460",
    "x\u034f\u0301", "\u0345\u0301", "\u1f00\u0345", "\u0e40\u0e01\u0e35", "\u1b05\u1b35",
    "\U000110a5\U000110ba", "\u0cbf\u0cd5", "\u0b47\u0b3e",
]


def stdlib_sources(limit_bytes):
    """Python files of the running interpreter's standard library, in a fixed order."""
    root = Path(sysconfig.get_paths()["stdlib"])
    out, total = [], 0
    for path in sorted(root.glob("*.py")):
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, OSError):
            continue
        out.append(text)
        total += len(text.encode())
        if total >= limit_bytes:
            break
    return out


def prose(rng, n_words):
    parts = []
    for i in range(n_words):
        w = rng.choice(WORDS)
        r = rng.random()
        if r < 0.08:
            w = w.capitalize()
        elif r < 0.1:
            w = w.upper()
        if rng.random() < 0.05:
            w += rng.choice(CONTRACTIONS)
        parts.append(w)
        if rng.random() < 0.12:
            parts.append(rng.choice(PUNCT))
        if rng.random() < 0.03:
            parts.append(str(rng.randint(0, 10**rng.randint(1, 6))))
        parts.append(" " if rng.random() < 0.95 else rng.choice(WHITESPACE))
    return "".join(parts)


def pick_slice(rng, text, max_len):
    start = rng.randrange(len(text))
    return text[start:start + rng.randint(1, max_len)]


def digits(rng):
    kind = rng.randrange(5)
    if kind == 0:
        return "".join(rng.choice("0123456789") for _ in range(rng.randint(1, 200)))
    if kind == 1:
        return f"{rng.randint(0, 10**9):,}.{rng.randint(0, 999):03d}"
    if kind == 2:
        return f"+1 ({rng.randint(100, 999)}) {rng.randint(100, 999)}-{rng.randint(1000, 9999)}"
    if kind == 3:
        return "٠١٢٣٤٥٦٧٨٩"[: rng.randint(1, 10)] + "１２３" + "①②" + "Ⅻ"
    return f"{rng.random() * 10**rng.randint(-5, 12):.{rng.randint(0, 9)}e}"


def mixed(rng, n_parts):
    """A document mixing every kind of piece, with no separators between some of them."""
    pieces = []
    for _ in range(n_parts):
        k = rng.randrange(11)
        if k == 0:
            pieces.append(prose(rng, rng.randint(1, 12)))
        elif k == 1:
            pieces.append(pick_slice(rng, CHINESE, 30))
        elif k == 2:
            pieces.append(pick_slice(rng, JAPANESE, 30))
        elif k == 3:
            pieces.append(pick_slice(rng, ARABIC, 40))
        elif k == 4:
            pieces.append(pick_slice(rng, rng.choice(OTHER_SCRIPTS), 30))
        elif k == 5:
            pieces.append("".join(rng.choice(EMOJI) for _ in range(rng.randint(1, 4))))
        elif k == 6:
            pieces.append(rng.choice(COMBINING) * rng.randint(1, 3))
        elif k == 7:
            pieces.append(rng.choice(WHITESPACE) * rng.randint(1, 3))
        elif k == 8:
            pieces.append(digits(rng))
        elif k == 9:
            pieces.append(rng.choice(SPECIAL_STRINGS))
        else:
            pieces.append(random_code_points(rng, rng.randint(1, 6)))
    return "".join(pieces)


# Ranges for random characters: mostly assigned blocks of many scripts, plus symbols, private
# use and astral planes. Characters assigned after Unicode 9 are included on purpose.
RANGES = [
    (0x20, 0x7E), (0xA0, 0x24F), (0x250, 0x36F), (0x370, 0x52F), (0x590, 0x6FF), (0x900, 0xDFF),
    (0xE00, 0xEFF), (0x1100, 0x11FF), (0x1E00, 0x1FFF), (0x2000, 0x2BFF), (0x3000, 0x30FF),
    (0x3130, 0x318F), (0x4E00, 0x9FFF), (0xAC00, 0xD7A3), (0xE000, 0xE0FF), (0xFB00, 0xFFFD),
    (0x1F300, 0x1FAFF), (0x10000, 0x1034F), (0x20000, 0x2A6DF), (0xE0000, 0xE007F),
]


def random_code_points(rng, n):
    out = []
    while len(out) < n:
        lo, hi = rng.choice(RANGES)
        cp = rng.randint(lo, hi)
        if 0xD800 <= cp <= 0xDFFF:
            continue
        out.append(chr(cp))
    return "".join(out)


def chat_like(rng):
    turns = []
    for _ in range(rng.randint(1, 4)):
        role = rng.choice(["user", "assistant", "system", "tool"])
        body = mixed(rng, rng.randint(2, 15))
        if rng.random() < 0.5:
            turns.append(f"<|im_start|>{role}\n{body}<|im_end|>\n")
        else:
            turns.append(f"<start_of_turn>{role}\n{body}<end_of_turn>\n")
    if rng.random() < 0.3:
        turns.append("<think>\n" + prose(rng, 20) + "\n</think>\n\n")
    return "".join(turns)


def build_corpus(min_bytes=1_100_000, seed=1234):
    rng = random.Random(seed)
    docs = [
        "", " ", "a", "\n", "  ", "\t\n", "hello world", "Hello World!", "<|im_end|>", "<bos>",
        "<|im_", "▁", "▁hello", "don't I'LL we've", "  leading and trailing  ", "x" * 5000,
        " " * 3000, "\n" * 40, "\t" * 40, "▁" * 40, "1" * 300, "😀" * 50, "é" * 30,
        unicodedata.normalize("NFD", "Ça été très réussi, naïve Zoë, Ångström"),
    ]
    docs += SPECIAL_STRINGS + WHITESPACE + COMBINING + EMOJI
    docs += [CHINESE, JAPANESE, ARABIC] + OTHER_SCRIPTS
    # Code: the standard library as whole files and as slices.
    for src in stdlib_sources(300_000):
        docs.append(src if len(src) < 40_000 else src[:40_000])
    # Long prose documents.
    for _ in range(40):
        docs.append(prose(rng, rng.randint(50, 2000)))
    # Mixed and chat-like documents fill the rest.
    total = sum(len(d.encode()) for d in docs)
    i = 0
    while total < min_bytes:
        d = chat_like(rng) if i % 3 == 0 else mixed(rng, rng.randint(1, 60))
        if i % 7 == 0:
            d = unicodedata.normalize(rng.choice(["NFD", "NFKD"]), d)
        docs.append(d)
        total += len(d.encode())
        i += 1
    return docs


if __name__ == "__main__":
    corpus = build_corpus()
    print(len(corpus), "documents,", sum(len(d.encode()) for d in corpus), "bytes")
