import pytest

from data_processor.stages.step2_chunk import (
    Chunk,
    HFTokenCounter,
    WordCounter,
    chunk_text,
    sentence_spans,
)

TEXT = (
    "The Zorbian Empire was founded in 1203. Its first ruler was Queen Mira Tal. "
    "Dr. Smith wrote 3.5 volumes about it!\n\n"
    "The capital, Velora, lies on the river Ost. It had 40,000 people in 1300. Trade flourished there.\n\n"
    "Velora fell in 1450 after a long siege. Its walls still stand today. Tourists visit them every summer."
)
WORDS = WordCounter()


def test_sentence_spans_tile_the_text_and_respect_abbreviations_and_decimals():
    spans = sentence_spans(TEXT)
    assert "".join(TEXT[s:e] for s, e, _ in spans) == TEXT
    sents = [TEXT[s:e].strip() for s, e, _ in spans]
    assert "Dr. Smith wrote 3.5 volumes about it!" in sents
    assert [p for *_, p in spans].count(True) == 3  # three paragraphs


def test_cjk_sentences():
    text = "北京是中国的首都。上海是最大的城市！广州在南方。"
    assert [text[s:e] for s, e, _ in sentence_spans(text)] == ["北京是中国的首都。", "上海是最大的城市！", "广州在南方。"]


@pytest.mark.parametrize("chunk_size", [12, 20, 40, 200])
def test_chunk_size_bounds_every_chunk_and_breaks_at_sentences(chunk_size):
    chunks = chunk_text(TEXT, WORDS, chunk_size=chunk_size, overlap=0)
    assert all(c.n_tokens <= chunk_size for c in chunks)
    assert all(c.text.rstrip().endswith((".", "!")) for c in chunks)  # never mid-sentence
    # Without overlap, the chunks together are the text, word for word.
    assert " ".join(c.text for c in chunks).split() == TEXT.split()


def test_smaller_chunks_mean_more_chunks():
    counts = [len(chunk_text(TEXT, WORDS, chunk_size=n, overlap=0)) for n in (12, 20, 40, 200)]
    assert counts == sorted(counts, reverse=True) and counts[0] > counts[-1] == 1


@pytest.mark.parametrize("overlap", [0, 8, 15])
def test_overlap_repeats_whole_sentences_up_to_the_limit(overlap):
    chunks = chunk_text(TEXT, WORDS, chunk_size=25, overlap=overlap)
    for a, b in zip(chunks, chunks[1:]):
        shared = [s for s in _sentences(b.text) if s in _sentences(a.text)]
        if overlap == 0:
            assert not shared
        assert sum(len(s.split()) for s in shared) <= overlap
    if overlap:
        assert any(set(_sentences(a.text)) & set(_sentences(b.text)) for a, b in zip(chunks, chunks[1:]))


def _sentences(text):
    return [text[s:e].strip() for s, e, _ in sentence_spans(text)]


def test_prefers_paragraph_ends():
    chunks = chunk_text(TEXT, WORDS, chunk_size=30, overlap=0)
    assert chunks[0].text.endswith("volumes about it!")


def test_a_sentence_longer_than_a_chunk_is_cut_at_token_boundaries():
    text = " ".join(f"w{i}" for i in range(95))  # one "sentence", no punctuation: a huge single line
    chunks = chunk_text(text, WORDS, chunk_size=30, overlap=5)
    assert [c.n_tokens for c in chunks] == [30, 30, 30, 5]
    assert " ".join(c.text for c in chunks).split() == text.split()


def test_bad_parameters():
    with pytest.raises(ValueError):
        chunk_text(TEXT, WORDS, chunk_size=10, overlap=10)
    with pytest.raises(ValueError):
        chunk_text(TEXT, WORDS, chunk_size=0, overlap=0)


def test_chunk_ids_name_document_and_position():
    chunks = chunk_text(TEXT, WORDS, chunk_size=20, overlap=0, doc_name="dir/a.txt")
    assert [c.chunk_id for c in chunks] == [f"dir/a.txt#{i}" for i in range(len(chunks))]


def test_model_tokenizer_counts_tokens(smollm2_tokenizer):
    counter = HFTokenCounter(smollm2_tokenizer)
    chunks = chunk_text(TEXT * 3, counter, chunk_size=40, overlap=10)
    for c in chunks:
        assert len(smollm2_tokenizer(c.text, add_special_tokens=False)["input_ids"]) <= 40 + 2
    long_word = "x" * 3000  # no spaces at all: cut by the tokenizer's offsets
    parts = chunk_text(long_word, counter, chunk_size=64, overlap=0)
    assert "".join(p.text for p in parts) == long_word and all(p.n_tokens <= 64 for p in parts)


def test_chunk_dataclass_id():
    assert Chunk("a/b.txt", 3, "t", 1).chunk_id == "a/b.txt#3"
