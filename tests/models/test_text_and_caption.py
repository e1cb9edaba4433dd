"""The offline text encoder (caches, freezing, resolution of names/paths) and the caption decoder."""

from __future__ import annotations

import pytest
import torch

from ecgalign.models.decoders import CaptionDecoder
from ecgalign.models.encoders.text import TextEncoder, resolve_text_encoder


@pytest.fixture(scope="module")
def minilm():
    return TextEncoder()


def test_default_resolves_to_the_packaged_weights_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    path = resolve_text_encoder(None)
    assert path.endswith("model") and resolve_text_encoder("all-MiniLM-L6-v2") == path
    assert resolve_text_encoder("ncbi/MedCPT-Query-Encoder") == "ncbi/MedCPT-Query-Encoder"  # a hub name passes
    with pytest.raises(FileNotFoundError, match="no such folder"):
        resolve_text_encoder("./models/does-not-exist")


def test_frozen_encoder_embeds_each_text_once_and_means_something(minilm):
    assert minilm.embed_dim == 384 and not any(p.requires_grad for p in minilm.parameters())
    minilm.train()
    assert not minilm.model.training  # frozen stays in eval mode
    texts = ["sinus rhythm, normal ecg", "atrial fibrillation with rapid ventricular response", "sinus rhythm, normal ecg"]
    z = minilm(texts)
    assert z.shape == (3, 384) and minilm.cached_texts == 2
    torch.testing.assert_close(z[0], z[2])
    again = minilm(["normal sinus rhythm", "atrial fibrillation"])
    assert minilm.cached_texts == 4
    cos = torch.nn.functional.cosine_similarity
    # a real sentence encoder: paraphrases are closer than different diagnoses
    assert cos(z[0], again[0], dim=0) > cos(z[0], again[1], dim=0)


def test_primed_embeddings_do_not_depend_on_batch_order(minilm):
    # lazily, a text's embedding depends in the last bits on the batch it was first seen in (padding width,
    # batch size): that broke exact resume (a resumed run meets its texts in other batches). Priming embeds the
    # corpus in a fixed order, so two encoders that met the texts in different orders hold identical numbers.
    corpus = ["sinus rhythm, normal ecg", "atrial fibrillation with rapid ventricular response", "sinus bradycardia",
              "left ventricular hypertrophy with secondary repolarisation abnormality", "inferior infarct, age undetermined"]
    def two_histories(prime):
        a, b = TextEncoder(), TextEncoder()
        a.model, b.model = minilm.model, minilm.model  # one set of weights, two caches
        if prime:
            assert a.prime(corpus + corpus[:1]) == 5 and a.prime(corpus) == 0
            assert b.prime(corpus[::-1]) == 5
        a(corpus[:2]), a(corpus[2:])  # met in two batches of other widths...
        b(corpus[::-1])  # ...or in one, in another order
        b(["a text outside the corpus is embedded lazily"])
        return a(corpus), b(corpus)

    primed, b = two_histories(prime=True)
    assert torch.equal(primed, b)
    a, b = two_histories(prime=False)  # what priming prevents (on kernels where padding changes the last bits)
    torch.testing.assert_close(a, b)
    deferred = TextEncoder()
    deferred.model = minilm.model
    deferred.prime_on_first_use(corpus[::-1])
    assert deferred.cached_texts == 0  # nothing embedded until the first forward (on the training device)
    deferred(corpus[:1])
    assert deferred.cached_texts == 5 and torch.equal(deferred(corpus), primed)
    trainable = TextEncoder(trainable=True)
    assert trainable.prime(corpus) == 0 and trainable.cached_texts == 0


def test_tokenisation_is_cached_and_padded(minilm):
    batch = minilm.tokenize(["sinus rhythm", "left bundle branch block with st changes"])
    ids, mask = batch["input_ids"], batch["attention_mask"]
    assert ids.shape == mask.shape and ids.shape[0] == 2
    assert mask[0].sum() < mask[1].sum() and (ids[0][mask[0] == 0] == minilm.pad_id).all()
    assert "sinus rhythm" in minilm._tokens


def test_trainable_encoder_gets_gradients():
    encoder = TextEncoder(trainable=True, max_length=16)
    encoder(["sinus rhythm", "atrial flutter"]).sum().backward()
    grads = [p.grad for p in encoder.parameters() if p.requires_grad]
    assert grads and all(g is not None for g in grads[:5])


def test_caption_decoder_is_causal_and_predicts_next_tokens():
    torch.manual_seed(0)
    decoder = CaptionDecoder(ecg_dim=24, vocab_size=50, dim=16, depth=1, heads=2, max_length=12).eval()
    memory = torch.randn(2, 5, 24)
    ids = torch.randint(1, 50, (2, 9))
    logits = decoder(memory, ids)
    assert logits.shape == (2, 8, 50)
    changed = ids.clone()
    changed[:, 6] = (changed[:, 6] + 1) % 50
    other = decoder(memory, changed)
    torch.testing.assert_close(logits[:, :6], other[:, :6])  # positions before 6 never see token 6
    assert not torch.allclose(logits[:, 6:], other[:, 6:])
    assert not torch.allclose(decoder(torch.randn(2, 5, 24), ids), logits)  # it reads the ECG
    assert decoder(memory, torch.randint(1, 50, (2, 30))).shape == (2, 11, 50)  # cut at max_length


def test_a_compact_caption_vocabulary_maps_ids_and_keeps_unknown_ones_apart():
    decoder = CaptionDecoder(ecg_dim=8, vocab_size=1000, dim=16, depth=1, heads=2, pad_id=0, vocab_ids=[101, 7, 102, 55])
    assert decoder.vocab_ids.tolist() == [0, 7, 55, 101, 102] and decoder.pad_index == 0
    ids = torch.tensor([[101, 7, 999, 102, 0]])
    assert decoder.index(ids).tolist() == [[3, 1, 5, 4, 0]]  # 999 is outside the corpus: the extra slot 5
    assert decoder.targets(ids).tolist() == [[1, 5, 4, 0]]
    logits = decoder(torch.randn(1, 3, 8), ids)
    assert logits.shape == (1, 4, 6)  # 5 kept ids + 1 unknown slot instead of 1000
    loaded = CaptionDecoder(ecg_dim=8, vocab_size=1000, dim=16, depth=1, heads=2, pad_id=0, vocab_ids=5)
    loaded.load_state_dict(decoder.state_dict())
    assert loaded.vocab_ids.tolist() == decoder.vocab_ids.tolist() and loaded.pad_index == 0
    torch.testing.assert_close(loaded.eval()(torch.ones(1, 3, 8), ids), decoder.eval()(torch.ones(1, 3, 8), ids))
