import numpy as np
import pytest

from serdemo.learn.normalize import FeatureNormalizer, mean_std, speaker_subspace


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    en = rng.normal(0.0, 1.0, (40, 2, 3))
    de = rng.normal(10.0, 3.0, (40, 2, 3))
    x = np.concatenate([en, de]).astype(np.float32)
    languages = ["en"] * 40 + ["de"] * 40
    speakers = [f"en/{i % 4}" for i in range(40)] + [f"de/{i % 4}" for i in range(40)]
    return x, languages, speakers


def test_global_mode_standardises_the_whole_set(data):
    x, languages, speakers = data
    out = FeatureNormalizer("global").fit(x, languages, speakers).transform(x, languages, speakers)
    assert out.shape == x.shape and out.dtype == np.float32
    np.testing.assert_allclose(out.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(out.std(0), 1, atol=1e-3)


def test_per_language_mode_standardises_each_language(data):
    x, languages, speakers = data
    out = FeatureNormalizer("per-language").fit(x, languages, speakers).transform(x, languages, speakers)
    for lang in ("en", "de"):
        rows = np.array(languages) == lang
        np.testing.assert_allclose(out[rows].mean(0), 0, atol=1e-5)
        np.testing.assert_allclose(out[rows].std(0), 1, atol=1e-3)


def test_per_speaker_mode_and_its_fallbacks(data):
    x, languages, speakers = data
    norm = FeatureNormalizer("per-speaker", min_group_size=5).fit(x, languages, speakers)
    out = norm.transform(x, languages, speakers)
    rows = np.array(speakers) == "de/1"
    np.testing.assert_allclose(out[rows].mean(0), 0, atol=1e-5)
    # an unseen speaker with few clips gets its language's statistics ...
    few = norm.transform(x[40:42], ["de", "de"], ["de/new", "de/new"])
    lang_mean, lang_std = norm.language_stats["de"]
    np.testing.assert_allclose(few, (x[40:42] - lang_mean) / lang_std, rtol=1e-5)
    # ... and one with enough clips its own
    many = norm.transform(x[40:50], ["de"] * 10, ["de/new"] * 10)
    np.testing.assert_allclose(many.mean(0), 0, atol=1e-5)


@pytest.mark.parametrize("mode", ["per-language", "nap"])
def test_an_unseen_language_gets_the_global_statistics_however_many_clips_come_together(data, mode):
    # a batch's own statistics would standardise a batch of one mood (a user's uploads) to "no emotion"
    # and make a clip's answer depend on the clips scored beside it
    x, languages, speakers = data
    norm = FeatureNormalizer(mode, min_group_size=5).fit(
        x[:40], languages[:40], speakers[:40], np.arange(40) % 2
    )
    together = norm.transform(x[40:], ["it"] * 40, ["it/unknown"] * 40)
    alone = np.concatenate([norm.transform(x[i : i + 1], ["it"], ["it/unknown"]) for i in range(40, 80)])
    np.testing.assert_allclose(together, alone, rtol=1e-5, atol=1e-5)  # up to the projection's rounding
    # fitted on English alone, the global statistics are English's
    np.testing.assert_allclose(together, norm.transform(x[40:], ["en"] * 40, speakers[40:]), rtol=1e-6)
    assert np.abs(together.mean(0)).max() > 1  # not the zero mean its own statistics would give


def test_state_round_trip_and_shape_check(data):
    x, languages, speakers = data
    norm = FeatureNormalizer("per-speaker").fit(x, languages, speakers)
    meta, arrays = norm.state()
    again = FeatureNormalizer.from_state(meta, arrays)
    np.testing.assert_array_equal(
        again.transform(x, languages, speakers), norm.transform(x, languages, speakers)
    )
    with pytest.raises(ValueError, match="another encoder"):
        norm.transform(x[:, :1], languages, speakers)


def test_a_speaker_with_few_clips_at_fit_keeps_its_languages_statistics(data):
    x, languages, speakers = data
    speakers = list(speakers)
    speakers[-1] = "de/unknown"  # one recording without a speaker id among German corpus clips
    norm = FeatureNormalizer("per-speaker").fit(x, languages, speakers)
    by_language = FeatureNormalizer("per-language").fit(x, languages)
    out = norm.transform(x[-1:], languages[-1:], speakers[-1:])
    np.testing.assert_allclose(out, by_language.transform(x[-1:], languages[-1:]), rtol=1e-5)
    assert np.abs(out).max() > 0.1  # its own statistics would have standardised it to zeros
    assert "de/unknown" not in norm.speaker_stats and "de/0" in norm.speaker_stats


def speaker_world(one_emotion_speakers: bool, seed: int = 0):
    """4 features: 0 carries the speaker, 1 the emotion, 2-3 noise; 8 speakers x 2 emotions."""
    rng = np.random.default_rng(seed)
    speakers = np.repeat(np.arange(8), 20)
    emotion = np.tile(np.arange(2), 80) if not one_emotion_speakers else speakers % 2
    x = 0.1 * rng.normal(size=(160, 1, 4))
    x[:, 0, 0] += rng.normal(0, 3, 8)[speakers]
    x[:, 0, 1] += 2.0 * emotion
    return x.astype(np.float32), ["en"] * 160, [f"en/{s}" for s in speakers], emotion


def test_nap_projects_out_speakers_and_keeps_emotions_even_when_speakers_show_one_emotion():
    x, languages, speakers, emotion = speaker_world(one_emotion_speakers=True)
    nap = FeatureNormalizer("nap", nap_dim=1).fit(x, languages, speakers, emotion)
    assert nap.nap_basis.shape == (1, 4)
    assert abs(nap.nap_basis[0, 0]) > 0.95  # the speaker axis, found although no speaker spans both classes
    out = nap.transform(x, languages, speakers)
    before = FeatureNormalizer("per-language").fit(x, languages).transform(x, languages)
    assert np.abs(out[:, 0, 0]).std() < 0.25 * np.abs(before[:, 0, 0]).std()  # speaker offsets gone
    gap = out[emotion == 1, 0, 1].mean() - out[emotion == 0, 0, 1].mean()
    assert gap > 1.5  # the emotion stays
    # per-speaker standardisation on the same data subtracts the emotion with the speaker
    speaker_norm = FeatureNormalizer("per-speaker").fit(x, languages, speakers)
    flat = speaker_norm.transform(x, languages, speakers)
    assert abs(flat[emotion == 1, 0, 1].mean() - flat[emotion == 0, 0, 1].mean()) < 0.1


def test_nap_learns_only_from_labeled_clips_of_known_speakers_and_survives_a_round_trip():
    x, languages, speakers, emotion = speaker_world(one_emotion_speakers=False)
    unlabeled = FeatureNormalizer("nap").fit(x, languages, speakers, np.full(160, -1))
    assert unlabeled.nap_basis.shape == (0, 4)  # no labels: plain per-language standardisation
    unknown = FeatureNormalizer("nap").fit(x, languages, ["en/unknown"] * 160, emotion)
    assert unknown.nap_basis.shape == (0, 4)
    nap = FeatureNormalizer("nap", nap_dim=2).fit(x, languages, speakers, emotion)
    meta, arrays = nap.state()
    again = FeatureNormalizer.from_state(meta, arrays)
    # a single clip of an unknown speaker is transformed without speaker statistics, the same after loading
    np.testing.assert_allclose(again.transform(x[:1], ["en"], [""]), nap.transform(x[:1], ["en"], [""]))
    assert again.nap_dim == 2


def test_normalizer_defaults_are_the_configs():
    from serdemo.config import AdaptConfig

    norm = FeatureNormalizer()
    assert (norm.mode, norm.nap_dim) == (AdaptConfig().normalization, AdaptConfig().nap_dim)


def test_a_language_prior_shrinks_a_small_pools_statistics_toward_the_global_ones():
    # 990 clips of a corpus around 0, and a 10-clip pool in one mood around 5, with a prior of 90 clips
    rng = np.random.default_rng(7)
    x = np.concatenate([rng.normal(0, 1, (990, 3)), rng.normal(5, 0.5, (10, 3))]).astype(np.float32)
    languages = ["en"] * 990 + ["xx"] * 10
    own = FeatureNormalizer("per-language").fit(x, languages)
    shrunk = FeatureNormalizer("per-language", language_prior=90).fit(x, languages)
    pool_mean = x[990:].astype(np.float64).mean(0)
    expected = (10 * pool_mean + 90 * x.astype(np.float64).mean(0)) / 100  # a tenth of the pool's own
    np.testing.assert_allclose(shrunk.language_stats["xx"][0], expected, rtol=1e-5)
    np.testing.assert_allclose(own.language_stats["xx"][0], pool_mean, rtol=1e-5)
    # the mixture's spread around the shrunk mean: wider than the pool's own, so its mood is not erased
    assert (shrunk.language_stats["xx"][1] > 2 * own.language_stats["xx"][1]).all()
    assert np.abs(shrunk.transform(x[990:], languages[990:]).mean()) > 0.5  # the mood survives
    assert np.abs(own.transform(x[990:], languages[990:]).mean()) < 1e-5  # own statistics erase it
    # a large corpus barely moves, and the prior survives a round trip
    np.testing.assert_allclose(shrunk.language_stats["en"][0], own.language_stats["en"][0], atol=0.1)
    again = FeatureNormalizer.from_state(*shrunk.state())
    assert again.language_prior == 90
    np.testing.assert_array_equal(again.transform(x, languages), shrunk.transform(x, languages))


def _one_mood_pool(rng, pool_class=4, pool_size=40):
    """A labeled source whose 5 classes sit along axis 0, and a new language offset by 10 along axis 1
    and scaled x2: a pool of ``pool_size`` clips of one class, and a test set of every class."""
    source_y = np.repeat(np.arange(5), 400)
    source = rng.normal(size=(2000, 3))
    source[:, 0] += 2 * source_y

    def target(y):
        clips = rng.normal(size=(len(y), 3))
        clips[:, 0] += 2 * y
        clips[:, 1] += 10
        return 2 * clips

    pool_y = np.full(pool_size, pool_class)
    test_y = np.repeat(np.arange(5), 200)
    x = np.concatenate([source, target(pool_y)]).astype(np.float32)
    languages = ["en"] * 2000 + ["xx"] * pool_size
    return x, languages, np.concatenate([source_y, pool_y]), target(test_y).astype(np.float32), test_y


def test_anchoring_puts_a_one_mood_pools_class_where_the_source_has_it():
    x, languages, labels, test, test_y = _one_mood_pool(np.random.default_rng(3))
    source_positions = [-1.41, -0.71, 0.0, 0.71, 1.41]  # 2 * class, standardised: between 4 + within 1
    for anchoring, tolerance in ((True, 0.25), (False, None)):
        norm = FeatureNormalizer("per-language", language_anchoring=anchoring).fit(x, languages, None, labels)
        z = norm.transform(test, ["xx"] * len(test))
        positions = np.array([z[test_y == c, 0].mean() for c in range(5)])
        if anchoring:
            np.testing.assert_allclose(positions, source_positions, atol=tolerance)
            assert abs(z[:, 1].mean()) < 0.25  # the language's offset is gone
        else:  # the pool's own statistics: its class becomes the language's centre, the rest far below it
            assert abs(positions[4]) < 0.2 and positions[0] < -5
    again = FeatureNormalizer.from_state(*norm.state())
    assert again.language_anchoring is False
    anchored = FeatureNormalizer("per-language", language_anchoring=True).fit(x, languages, None, labels)
    assert FeatureNormalizer.from_state(*anchored.state()).language_anchoring is True


def test_anchoring_leaves_unlabeled_and_best_labeled_languages_alone():
    x, languages, labels, _, _ = _one_mood_pool(np.random.default_rng(4))
    plain = FeatureNormalizer("nap").fit(x, languages, None, np.where(np.arange(len(x)) < 2000, labels, -1))
    anchored = FeatureNormalizer("nap", language_anchoring=True).fit(
        x, languages, None, np.where(np.arange(len(x)) < 2000, labels, -1)
    )
    for language in ("en", "xx"):  # an unlabeled pool has no class to anchor by; the source is the reference
        for own, other in zip(plain.language_stats[language], anchored.language_stats[language], strict=True):
            np.testing.assert_array_equal(own, other)
    # half the pool labeled: the statistics move half way from the pool's own toward the anchored ones
    half = labels.copy()
    half[2000:2020] = -1
    mixed = FeatureNormalizer("nap", language_anchoring=True).fit(x, languages, None, half)
    full = FeatureNormalizer("nap", language_anchoring=True).fit(x, languages, None, labels)
    middle = (plain.language_stats["xx"][0] + full.language_stats["xx"][0]) / 2
    np.testing.assert_allclose(mixed.language_stats["xx"][0], middle, atol=0.5)


def _reference_fit_transform(x, languages, speakers, labels, mode, nap_dim):
    """The straightforward formulas (full-size float64 copies, statistics arrays) the fast code replaces."""
    x64, languages, speakers = x.astype(np.float64), np.asarray(languages), np.asarray(speakers)

    def stats(rows):
        return x64[rows].mean(0).astype(np.float32), (x64[rows].std(0) + 1e-5).astype(np.float32)

    mean, std = np.empty_like(x, np.float32), np.empty_like(x, np.float32)
    mean[:], std[:] = stats(np.ones(len(x), bool))
    for lang in np.unique(languages):
        mean[languages == lang], std[languages == lang] = stats(languages == lang)
    out = ((x - mean) / std).astype(np.float32)
    if mode == "nap":
        basis = speaker_subspace(out, labels, languages, speakers, nap_dim)
        flat = out.reshape(len(out), -1)
        out = (flat - (flat @ basis.T) @ basis).reshape(out.shape).astype(np.float32)
    return out


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("mode", ["per-language", "nap"])
def test_fit_and_transform_equal_the_straightforward_formulas_bit_for_bit(mode, dtype):
    rng = np.random.default_rng(3)
    n = 2600  # more rows than one block, languages and labels interleaved: gathers as well as slices
    x = (2 * rng.normal(size=(n, 3, 16)) + rng.normal(size=(1, 3, 16))).astype(dtype)
    languages = np.where(rng.random(n) < 0.4, "en", "de")
    speakers = np.array([f"{lang}/{i % 9}" for i, lang in enumerate(languages)])
    labels = np.where(rng.random(n) < 0.5, rng.integers(0, 4, n), -1)
    norm = FeatureNormalizer(mode, nap_dim=3).fit(x, languages, speakers, labels)
    out = norm.transform(x, languages, speakers)
    assert out.dtype == np.float32
    np.testing.assert_array_equal(out, _reference_fit_transform(x, languages, speakers, labels, mode, 3))
    mean, std = mean_std(x, np.flatnonzero(languages == "en"))
    np.testing.assert_array_equal(mean, x[languages == "en"].astype(np.float64).mean(0))
    np.testing.assert_array_equal(std, x[languages == "en"].astype(np.float64).std(0))
