"""Text data of language-model runs: tokenizers, canary formats, corpora and prepare_text."""

from __future__ import annotations

import itertools
import json
import math
from types import SimpleNamespace

import numpy as np
import pytest

from memdash.analysis.record.text.corpus import (
    TEMPLATES,
    WORDS,
    python_docs,
    read_text_path,
    synthetic_corpus,
    synthetic_entropy,
)
from memdash.analysis.record.text.formats import (
    draw_secrets,
    index_digits,
    parse_format,
    secret_index,
)
from memdash.analysis.record.text.prepare import make_sequences, prepare_text
from memdash.analysis.record.text.tokenize import (
    BPETokenizer,
    ByteTokenizer,
    Tokenizer,
    digit_token_ids,
    load_tokenizer,
    train_bpe,
)

WORDY = [
    "the cat sat on the mat and the dog sat on the log",
    "a cat and a dog met on a mat by the log",
    "the dog ran to the cat and the cat ran to the mat",
] * 5


def data(**fields) -> SimpleNamespace:
    """A stand-in DataConfig with the text fields the brief lists (and its defaults)."""
    base = {
        "dataset": "text",
        "text_corpus": "synthetic",
        "path": None,
        "text_column": "text",
        "n_examples": None,
        "seq_len": 64,
        "chunking": "lines",
        "tokenizer": "byte",
        "vocab_size": 512,
        "test_fraction": 0.2,
        "canaries": 0,
        "canary_repeats": (1, 4, 16, 64),
        "canary_format": "my pin is {d}{d}{d}{d}{d}{d}",
        "reference_canaries": 500,
        "duplicate_sequences": 0,
        "duplicate_counts": (1, 2, 4, 8, 16, 32),
        "prefix_len": 32,
        "suffix_len": 16,
    }
    return SimpleNamespace(**{**base, **fields})


# ------------------------------------------------------------------------ tokenizers


def test_the_byte_tokenizer_round_trips_utf8_with_known_ids():
    tok = ByteTokenizer()
    assert (tok.kind, tok.vocab_size, tok.bos_id, tok.to_json()) == ("byte", 257, 256, None)
    assert tok.encode("pin 7é") == [112, 105, 110, 32, 55, 0xC3, 0xA9]
    assert tok.decode([256, 112, 105, 110, 32, 55, 0xC3, 0xA9]) == "pin 7é"  # BOS dropped
    assert tok.decode([104, 0xC3]) == "h\ufffd"  # a character cut in half
    assert tok.token_texts([256, 104, 10, 0xC3]) == ["<bos>", "h", "\n", "<0xC3>"]
    assert isinstance(tok, Tokenizer)
    with pytest.raises(ValueError, match="token id -1 outside the vocabulary 0..256"):
        tok.decode([104, -1])


def test_bpe_keeps_every_digit_one_token_and_round_trips():
    tok = train_bpe(WORDY + ["pin 123456 pin 654321"] * 5, 300)
    assert isinstance(tok, BPETokenizer) and isinstance(tok, Tokenizer)
    assert tok.kind == "bpe" and tok.vocab_size <= 300
    assert tok.token_texts([tok.bos_id]) == ["<bos>"]
    digits = digit_token_ids(tok)
    assert len(set(digits)) == 10
    ids = tok.encode("pin 123456")
    assert ids[-6:] == [digits[d] for d in (1, 2, 3, 4, 5, 6)]  # never merged
    assert tok.bos_id not in ids
    assert tok.decode([tok.bos_id, *ids]) == "pin 123456"
    assert "".join(tok.token_texts(ids)) == "pin 123456"
    text = "the cat met a dog, 42 times"
    assert tok.decode(tok.encode(text)) == text
    assert len(tok.encode("the cat")) < len("the cat")  # merges learned


def test_bpe_training_is_deterministic_and_reloads_from_its_json():
    first, second = train_bpe(WORDY, 290), train_bpe(WORDY, 290)
    assert first.to_json() == second.to_json()
    again = load_tokenizer("bpe", first.to_json())
    assert (again.vocab_size, again.bos_id) == (first.vocab_size, first.bos_id)
    assert again.encode("the dog ran 99") == first.encode("the dog ran 99")
    assert isinstance(load_tokenizer("byte", None), ByteTokenizer)


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: train_bpe(WORDY, 256), "--vocab-size must be at least 257"),
        (lambda: train_bpe(["", ""], 300), "no training text"),
        (lambda: load_tokenizer("wordpiece", None), "unknown tokenizer 'wordpiece'; valid: byte"),
        (lambda: load_tokenizer("bpe", None), "tokenizer 'bpe' needs its tokenizer.json"),
        (lambda: load_tokenizer("bpe", "{not json"), "tokenizer.json: not a tokenizer"),
        (lambda: load_tokenizer("bpe", '{"a": 1}'), "tokenizer.json: not a tokenizer"),
    ],
)
def test_tokenizer_errors_name_what_is_wrong(call, message):
    with pytest.raises(ValueError, match=message):
        call()


class _Fake:
    """A tokenizer whose digits are not one token each."""

    kind = "fake"

    def __init__(self, encode):
        self.encode = encode


def test_digit_token_ids_refuses_digits_that_are_not_one_token():
    assert digit_token_ids(ByteTokenizer()) == list(range(48, 58))
    two = _Fake(lambda text: [1, 2] if text == "7" else [ord(c) for c in text])
    with pytest.raises(ValueError, match="encodes the digit '7' as 2 tokens"):
        digit_token_ids(two)
    merged = _Fake(lambda text: [ord(text)] if len(text) == 1 else [0])
    with pytest.raises(ValueError, match="merges digits in '0123456789'"):
        digit_token_ids(merged)


# --------------------------------------------------------------------- canary formats


def test_a_format_has_its_slots_space_prefix_and_renders_digits():
    fmt = parse_format("my pin is {d}{d}{d}{d}{d}{d}")
    assert (fmt.slots, fmt.space_size, fmt.prefix()) == (6, 1_000_000, "my pin is ")
    assert fmt.literals == ("my pin is ", "", "", "", "", "", "")
    assert fmt.render([0, 1, 2, 3, 4, 5]) == "my pin is 012345"
    between = parse_format("a{d}b{d}c")
    assert (between.literals, between.space_size) == (("a", "b", "c"), 100)
    assert between.render(np.array([4, 2])) == "a4b2c"
    with pytest.raises(ValueError, match=r"needs 2 digits 0..9, got \[4\]"):
        between.render([4])
    with pytest.raises(ValueError, match=r"needs 2 digits 0..9, got \[4, 10\]"):
        between.render([4, 10])


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("my pin is", r"--canary-format 'my pin is' has no \{d\} slot"),
        ("pin {x}{d}", r"--canary-format 'pin \{x\}\{d\}' has a brace outside a \{d\} slot"),
        ("pin {d}}", "has a brace outside"),
        ("{d}" * 19, "has 19 slots; at most 18"),
    ],
)
def test_a_bad_format_is_refused_naming_the_option(text, message):
    with pytest.raises(ValueError, match=message):
        parse_format(text)


def test_secret_index_reads_the_digits_as_a_base_10_number():
    digits = np.array([[0, 0, 0], [0, 4, 2], [9, 9, 9], [1, 0, 0]])
    index = secret_index(digits)
    assert index.dtype == np.int64 and index.tolist() == [0, 42, 999, 100]
    np.testing.assert_array_equal(index_digits(index, 3), digits)
    assert secret_index(np.array([[9] * 18])).item() == 10**18 - 1  # fits int64
    with pytest.raises(ValueError, match="integers 0..9"):
        secret_index(np.array([[1, 10]]))
    with pytest.raises(ValueError, match=r"shape \(k, slots\)"):
        secret_index(np.array([1, 2]))


def test_secrets_are_distinct_seeded_and_avoid_the_excluded():
    fmt = parse_format("pin {d}{d}")
    every = draw_secrets(fmt, 100, 3)
    assert every.dtype == np.int64 and every.shape == (100, 2)
    assert sorted(secret_index(every).tolist()) == list(range(100))  # the whole space
    np.testing.assert_array_equal(draw_secrets(fmt, 5, 3), draw_secrets(fmt, 5, 3))
    assert not np.array_equal(draw_secrets(fmt, 5, 3), draw_secrets(fmt, 5, 4))
    rest = draw_secrets(fmt, 10, 0, exclude=index_digits(np.arange(90), 2))
    assert sorted(secret_index(rest).tolist()) == list(range(90, 100))
    with pytest.raises(ValueError, match="cannot draw 11 distinct secrets .* leave 10"):
        draw_secrets(fmt, 11, 0, exclude=index_digits(np.arange(90), 2))
    assert draw_secrets(parse_format("{d}" * 18), 3, 0).shape == (3, 18)


# -------------------------------------------------------------------------- corpora


def test_every_synthetic_choice_gives_a_distinct_sentence_of_30_to_70_characters():
    sizes = [len(words) for words in WORDS.values()]
    assert synthetic_entropy() == math.log2(4) + 4 + 4 + 3 + 4 + 3 == 20.0
    assert len(TEMPLATES) * math.prod(sizes) == 2**20
    sentences = {
        template.format(**dict(zip(WORDS, choice, strict=True)))
        for template in TEMPLATES
        for choice in itertools.product(*WORDS.values())
    }
    assert len(sentences) == 2**20  # so the entropy is exactly log2 of the count
    lengths = [len(s) for s in sentences]
    assert min(lengths) >= 30 and max(lengths) <= 70


def test_a_synthetic_draw_repeats_sentences_as_often_as_its_entropy_says():
    n = 20_000
    sentences, entropy = synthetic_corpus(n, seed=0)
    assert entropy == 20.0 and len(sentences) == n
    assert set(sentences) <= {s for s in sentences if 30 <= len(s) <= 70}
    # n draws from 2**20 equally likely sentences: 2**20 (1 - (1 - 2**-20)**n) distinct on
    # average, n - 190.3; the count of repeats is near-Poisson, sd ~ 13.8
    expected = 2**20 * (1 - (1 - 2**-20) ** n)
    repeats = n - len(set(sentences))
    assert abs(len(set(sentences)) - expected) < 5 * math.sqrt(n - expected)
    assert abs(math.log2(n * (n - 1) / 2 / repeats) - entropy) < 0.4  # entropy from repeats
    assert synthetic_corpus(5, seed=0)[0] == sentences[:5]
    assert synthetic_corpus(5, seed=1)[0] != sentences[:5]


def test_python_docs_reads_docstrings_in_order_without_importing(tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "a.py").write_text(
        '"""Short."""\n'
        "import sys\n"
        "raise SystemExit('imported!')\n"
        "class Thing:\n"
        '    """The first paragraph of Thing,\n    spread over lines.\n\n'
        '    A second paragraph of it, kept.\n\n    Ünïcode paragraph, dropped here."""\n'
        "    def method(self):\n"
        '        """The method\'s own docstring."""\n'
        "if sys.platform:\n"
        "    def inside():\n"
        '        """A function under an if block."""\n'
        "try:\n"
        "    pass\n"
        "except ImportError:\n"
        "    class Fallback:\n"
        '        """A class under an except clause."""\n'
    )
    (tmp_path / "b" / "c.py").write_text('"""Module c comes after a, sorted."""\n')
    (tmp_path / "broken.py").write_text('def f(:\n    """Never read, no parse."""\n')
    (tmp_path / "site-packages").mkdir()
    (tmp_path / "site-packages" / "x.py").write_text('"""Not the standard library at all."""\n')
    expected = [
        "The first paragraph of Thing, spread over lines.",
        "A second paragraph of it, kept.",
        "The method's own docstring.",
        "A function under an if block.",
        "A class under an except clause.",
        "Module c comes after a, sorted.",
    ]
    assert python_docs(root=tmp_path) == expected


def test_python_docs_of_the_standard_library_are_ascii_paragraphs():
    docs = python_docs()
    assert len(docs) > 1000 and docs == python_docs()
    assert all(len(d) >= 20 and d.isascii() and d.isprintable() for d in docs)
    assert "Text wrapping and filling." in docs  # textwrap's module docstring
    assert not any("  " in d for d in docs)


def test_read_text_path_reads_txt_jsonl_and_folders(tmp_path):
    (tmp_path / "a.txt").write_bytes("\ufeffone\r\ntwo\n\nthrée\n".encode())
    assert read_text_path(tmp_path / "a.txt") == ["one", "two", "", "thrée"]
    lines = [json.dumps({"body": "first", "n": 1}), "", json.dumps({"body": "second"})]
    (tmp_path / "b.jsonl").write_text("\n".join(lines) + "\n")
    assert read_text_path(str(tmp_path / "b.jsonl"), text_column="body") == ["first", "second"]
    folder = tmp_path / "folder"
    (folder / "sub").mkdir(parents=True)
    (folder / "z.txt").write_text("zed\n")
    (folder / "m.txt").write_text("em\nen\n")
    (folder / "sub" / "k.txt").write_text("kay")
    (folder / "notes.md").write_text("not read")
    assert read_text_path(folder) == ["em", "en", "kay", "zed"]  # sorted paths: sub/ < z


def test_read_text_path_reads_a_saved_hugging_face_dataset(tmp_path):
    import datasets

    one = datasets.Dataset.from_dict({"text": ["alpha", "beta"], "n": [1, 2]})
    one.save_to_disk(str(tmp_path / "one"))
    assert read_text_path(tmp_path / "one") == ["alpha", "beta"]
    both = datasets.DatasetDict(
        {"train": one, "test": datasets.Dataset.from_dict({"text": ["gamma"], "n": [3]})}
    )
    both.save_to_disk(str(tmp_path / "dd"))
    assert read_text_path(tmp_path / "dd") == ["alpha", "beta", "gamma"]
    with pytest.raises(ValueError, match=r"no column 'body'; its columns are \['text', 'n'\]"):
        read_text_path(tmp_path / "one", text_column="body")
    with pytest.raises(ValueError, match="row 0 of 'n' is int, not a string"):
        read_text_path(tmp_path / "one", text_column="n")


def _bad_inputs(tmp_path):
    (tmp_path / "empty.txt").write_text("\n  \n")
    (tmp_path / "latin.txt").write_bytes(b"ok\xffno")
    (tmp_path / "bad.jsonl").write_text('{"text": "fine"}\n{"text": \n')
    (tmp_path / "nocol.jsonl").write_text('{"body": "fine"}\n')
    (tmp_path / "list.jsonl").write_text('["text"]\n')
    (tmp_path / "nothing").mkdir()
    (tmp_path / "nothing" / "a.md").write_text("no txt here")
    (tmp_path / "data.csv").write_text("text\nhello\n")
    return {
        "missing": (tmp_path / "gone.txt", r"gone.txt: no such file or folder \(--data-path\)"),
        "empty": (tmp_path / "empty.txt", r"empty.txt: empty \(no text\)"),
        "utf8": (tmp_path / "latin.txt", "latin.txt: not UTF-8 text \\(byte 0xFF at offset 2\\)"),
        "json": (tmp_path / "bad.jsonl", "bad.jsonl line 2: not JSON"),
        "column": (tmp_path / "nocol.jsonl", "nocol.jsonl line 1: no string 'text'.*--text-column"),
        "object": (tmp_path / "list.jsonl", "list.jsonl line 1: no string 'text'"),
        "folder": (tmp_path / "nothing", r"nothing: no .txt files in this folder"),
        "suffix": (tmp_path / "data.csv", "data.csv: not a .txt or .jsonl file"),
        "none": (None, "text data needs --data-path"),
    }


@pytest.mark.parametrize(
    "case", ["missing", "empty", "utf8", "json", "column", "object", "folder", "suffix", "none"]
)
def test_read_text_path_errors_are_one_line_naming_the_file(tmp_path, case):
    path, message = _bad_inputs(tmp_path)[case]
    with pytest.raises(ValueError, match=message) as caught:
        read_text_path(path)
    assert "\n" not in str(caught.value)


# ---------------------------------------------------------------------- prepare_text


def _lines_file(tmp_path, lines):
    path = tmp_path / "lines.txt"
    path.write_text("\n".join(lines) + "\n")
    return str(path)


LINES = [f"line {i} {'abcdefghij'[i] * 6}" for i in range(10)]  # 13 bytes each


def test_prepare_text_lays_out_sequences_canaries_and_references(tmp_path):
    config = data(
        path=_lines_file(tmp_path, LINES),
        seq_len=8,
        prefix_len=2,
        suffix_len=3,
        canaries=1,
        canary_repeats=(1, 3),
        canary_format="pin {d}{d}",
        reference_canaries=2,
    )
    prepared = prepare_text(config, seed=0)
    ex, tokens = prepared.examples, prepared.tokens
    assert tokens.dtype == np.int32 and tokens.shape == (8 + 2 + 2 + 2, 8)
    assert ex["split"].tolist() == ["train"] * 10 + ["test"] * 2 + ["reference"] * 2
    assert ex["example_id"].tolist() == list(range(14))
    # 10 texts, round(0.2 * 10) = 2 test; each split keeps the file's order
    train_text, test_text = ex["text"][:8].tolist(), ex["text"][10:12].tolist()
    assert sorted(train_text + test_text) == [line[:8] for line in LINES]
    assert train_text == sorted(train_text) and test_text == sorted(test_text)
    for i in [*range(8), 10, 11]:
        assert tokens[i].tolist() == list(ex["text"][i].encode())  # 8 bytes, no padding
    # canaries: ids 8 (once per epoch) and 9 (three times); "pin " is the 4-token prefix
    canary = ex.iloc[[8, 9, 12, 13]]
    assert canary["is_canary"].all() and not ex["is_canary"][:8].any()
    assert canary["canary_repeats"].tolist() == [1, 3, 0, 0]
    assert canary["duplicates"].tolist() == [1, 3, 0, 0]
    assert canary["corruption"].tolist() == ["canary"] * 4
    assert canary["prefix_len"].tolist() == [4] * 4 and canary["suffix_len"].tolist() == [2] * 4
    assert canary["n_tokens"].tolist() == [6] * 4
    for i, row in canary.iterrows():
        assert row["text"] == f"pin {row['secret']}" and len(row["secret"]) == 2
        digits = [48 + int(d) for d in row["secret"]]
        assert tokens[i].tolist() == [112, 105, 110, 32, *digits, -1, -1]
    assert canary["secret"].nunique() == 4
    assert prepared.train_ids.dtype == np.int64
    assert prepared.train_ids.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9]
    plain = ex.iloc[[*range(8), 10, 11]]
    assert plain["prefix_len"].eq(2).all() and plain["suffix_len"].eq(3).all()
    assert plain["duplicates"].tolist() == [1] * 8 + [0, 0] and plain["secret"].eq("").all()
    assert ex["label"].eq(0).all() and ex["true_label"].eq(0).all() and not ex["is_noisy"].any()
    assert ex["corruption"][:8].eq("none").all() and ex["n_tokens"][:8].eq(8).all()
    assert prepared.canary_format.slots == 2 and prepared.entropy_bits is None
    assert isinstance(prepared.tokenizer, ByteTokenizer)
    dtypes = ex.dtypes.astype(str).to_dict()
    assert {k: dtypes[k] for k in ("example_id", "label", "n_tokens", "duplicates")} == {
        "example_id": "int64",
        "label": "int64",
        "n_tokens": "int64",
        "duplicates": "int64",
    }
    assert dtypes["is_canary"] == "bool" and dtypes["is_noisy"] == "bool"


def test_duplicated_sequences_are_presented_their_count_times(tmp_path):
    config = data(
        path=_lines_file(tmp_path, LINES),
        seq_len=8,
        prefix_len=2,
        suffix_len=3,
        duplicate_sequences=2,
        duplicate_counts=(1, 4),
    )
    prepared = prepare_text(config, seed=5)
    ex = prepared.examples
    train = ex[ex["split"] == "train"]
    assert sorted(train["duplicates"].tolist()) == [1] * 6 + [4, 4]
    assert (train["corruption"] == "duplicate").sum() == 4  # both counts' sequences
    assert train.loc[train["duplicates"] == 4, "corruption"].eq("duplicate").all()
    counts = np.bincount(prepared.train_ids, minlength=len(ex))
    np.testing.assert_array_equal(counts[: len(train)], train["duplicates"].to_numpy())
    assert len(prepared.train_ids) == 4 + 2 * 1 + 2 * 4  # plain, count 1, count 4
    assert prepared.canary_format is None and prepared.train_ids.max() < len(train)


def test_chunks_cut_each_split_into_full_pieces(tmp_path):
    config = data(path=_lines_file(tmp_path, ["abcd"] * 10), seq_len=8, prefix_len=4, suffix_len=4)
    prepared = prepare_text(replace_ns(config, chunking="chunks"), seed=0)
    # train: 8 texts, "abcd\nabcd...abcd" is 8 * 4 + 7 = 39 bytes: 4 pieces of 8, 7 dropped;
    # test: 2 texts, 9 bytes: 1 piece
    ex = prepared.examples
    assert ex["split"].tolist() == ["train"] * 4 + ["test"]
    joined = "\n".join(["abcd"] * 8)
    assert ex["text"].tolist() == [joined[i : i + 8] for i in (0, 8, 16, 24)] + ["abcd\nabc"]
    assert (prepared.tokens >= 0).all() and ex["n_tokens"].eq(8).all()


def replace_ns(namespace, **fields):
    return SimpleNamespace(**{**vars(namespace), **fields})


def test_make_sequences_truncates_lines_and_keeps_blank_ones_empty():
    tok = ByteTokenizer()
    assert make_sequences(["abc", " ", "abcdefgh"], tok, 5, "lines") == [
        [97, 98, 99],
        [],
        [97, 98, 99, 100, 101],
    ]
    assert make_sequences(["ab", "cd"], tok, 2, "chunks") == [[97, 98], [10, 99]]
    with pytest.raises(ValueError, match="unknown --chunking 'words'"):
        make_sequences(["ab"], tok, 2, "words")


def test_the_bpe_is_trained_on_the_training_texts_only(tmp_path):
    lines = synthetic_corpus(20, seed=4)[0]
    config = data(
        path=_lines_file(tmp_path, lines),
        tokenizer="bpe",
        vocab_size=300,
        prefix_len=4,
        suffix_len=4,
        canaries=1,
        canary_repeats=(2,),
        canary_format="code {d}{d}{d}",
        reference_canaries=3,
    )
    prepared = prepare_text(config, seed=1)
    ex, tok = prepared.examples, prepared.tokenizer
    train_texts = ex.loc[(ex["split"] == "train") & ~ex["is_canary"], "text"].tolist()
    assert tok.to_json() == train_bpe(train_texts, 300).to_json()  # not the test, no canary
    canary = ex[ex["is_canary"]]
    prefix = len(tok.encode("code "))
    assert canary["prefix_len"].eq(prefix).all() and canary["suffix_len"].eq(3).all()
    for i, row in canary.iterrows():
        n = row["n_tokens"]
        assert tok.decode(prepared.tokens[i, :n].tolist()) == f"code {row['secret']}"
        assert (prepared.tokens[i, n:] == -1).all()


def test_defaults_fill_fields_a_config_lacks_and_the_corpora_load():
    prepared = prepare_text(SimpleNamespace(n_examples=100, chunking="chunks"), seed=2)
    assert prepared.tokens.shape[1] == 64 and prepared.entropy_bits == 20.0
    ex = prepared.examples
    # 100 sentences, 80 train / 20 test, each split joined and cut into 64-byte pieces
    sentences = set(synthetic_corpus(100, 2)[0])
    for text in ex["text"]:
        assert set(text.split("\n")[1:-1]) <= sentences
    assert not ex["is_canary"].any() and ex["n_tokens"].eq(64).all()
    docs = prepare_text(
        data(text_corpus="python-docs", n_examples=30, prefix_len=4, suffix_len=4), 0
    )
    assert docs.entropy_bits is None and len(docs.examples) == 30
    starts = [d[:64] for d in python_docs()]
    for split in ("train", "test"):  # a sample of the paragraphs, in document order
        texts = iter(docs.examples.loc[docs.examples["split"] == split, "text"])
        wanted = next(texts)
        for start in starts:
            if start == wanted:
                wanted = next(texts, None)
        assert wanted is None


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        (
            {"lines": ["abcdefgh"] * 8 + ["abc", "ab"]},
            "lines.txt: 2 of 10 sequences are shorter than --prefix-len \\+ --suffix-len = 5 "
            "tokens \\(the shortest has 2\\)",
        ),
        ({"duplicate_sequences": 3, "duplicate_counts": (1, 2, 4)}, "--duplicate-sequences 3 x 3"),
        (
            {"canaries": 30, "canary_repeats": (1, 2, 3), "reference_canaries": 20},
            "= 110 secrets, more than the 100 candidates of --canary-format 'pin {d}{d}'",
        ),
        ({"canaries": 1, "seq_len": 5, "prefix_len": 1}, "canaries of 6 tokens, more than --seq"),
        ({"canaries": 1, "canary_format": "pin"}, "--canary-format 'pin' has no"),
        ({"chunking": "words"}, "unknown --chunking 'words' for text; valid: lines, chunks"),
        ({"tokenizer": "wordpiece"}, "unknown --tokenizer 'wordpiece'"),
        ({"text_corpus": "wiki"}, "unknown --text-corpus 'wiki'"),
        ({"prefix_len": 6}, "--prefix-len 6 .* \\+ --suffix-len 3 .* must fit in --seq-len 8"),
        ({"n_examples": 11}, "lines.txt: --n-examples 11 exceeds its 10 texts"),
        ({"n_examples": 2}, "of 2 texts leaves 2 training and 0 test texts"),
        ({"canary_repeats": (1, 0), "canaries": 1}, "--canary-repeats must be counts >= 1"),
        ({"dataset": "hf", "path": None}, "dataset 'hf' needs --data-path"),
    ],
)
def test_prepare_text_errors_are_one_line_naming_the_option_or_file(tmp_path, fields, message):
    lines = fields.pop("lines", ["abcdefgh"] * 10)
    config = data(
        path=_lines_file(tmp_path, lines),
        seq_len=8,
        prefix_len=2,
        suffix_len=3,
        canary_format="pin {d}{d}",
        reference_canaries=2,
    )
    with pytest.raises(ValueError, match=message) as caught:
        prepare_text(replace_ns(config, **fields), seed=0)
    assert "\n" not in str(caught.value)
