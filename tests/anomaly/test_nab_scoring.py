"""NAB scoring rules: rewards, probation, threshold sweep and normalisation."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
import pytest

from costwarden.anomaly import nab
from costwarden.errors import InputError

STANDARD = nab.CostProfile("standard", tp_weight=1.0, fn_weight=1.0, fp_weight=0.11)
LOW_FN = nab.CostProfile("reward_low_FN_rate", tp_weight=1.0, fn_weight=2.0, fp_weight=0.11)
SAMPLE_FILES = (
    "realAWSCloudwatch/ec2_cpu_utilization_fe7f93.csv",
    "realAdExchange/exchange-4_cpm_results.csv",
    "realTraffic/speed_7578.csv",
    "realTweets/Twitter_volume_UPS.csv",
    "artificialNoAnomaly/art_flatline.csv",
)


@pytest.fixture
def nab_dir(shared_data: Path) -> Path:
    return shared_data / "nab"


@pytest.fixture
def profiles(nab_dir: Path) -> dict[str, nab.CostProfile]:
    return nab.load_profiles(nab_dir / "profiles.json")


@pytest.fixture
def sample(nab_dir: Path) -> list[nab.LabelledSeries]:
    return nab.load_corpus(nab_dir, SAMPLE_FILES)


def _null_scores(nab_dir: Path, profile: str) -> dict[str, float]:
    path = nab_dir / "results" / "null" / f"null_{profile}_scores.csv"
    with path.open(newline="") as handle:
        return {row["File"]: float(row["Score"]) for row in csv.DictReader(handle) if row["File"]}


def _file_score(scores: np.ndarray, windows, profile: nab.CostProfile) -> float:
    rewards = nab.point_rewards(scores.size, windows, profile)
    return nab.score_file(scores, rewards, 0.5, profile.fn_weight).raw


def test_probation_length_is_capped() -> None:
    assert nab.probation_length(4032) == 604
    assert nab.probation_length(1127) == 169
    assert nab.probation_length(15902) == 750


def test_scaled_sigmoid_edges() -> None:
    assert float(nab.scaled_sigmoid(-1.0)) == pytest.approx(0.98661, abs=1e-5)
    assert float(nab.scaled_sigmoid(0.0)) == 0.0
    assert float(nab.scaled_sigmoid(3.5)) == -1.0
    assert float(nab.scaled_sigmoid(2.9)) > -1.0


def test_never_firing_matches_published_null(
    nab_dir: Path, sample: list[nab.LabelledSeries], profiles: dict[str, nab.CostProfile]
) -> None:
    for name in nab.PROFILE_NAMES:
        published = _null_scores(nab_dir, name)
        for item in sample:
            raw = _file_score(np.zeros(item.values.size), item.windows, profiles[name])
            assert raw == pytest.approx(published[item.name], abs=1e-12), (name, item.name)


def test_perfect_detector_earns_maximum(
    sample: list[nab.LabelledSeries], profiles: dict[str, nab.CostProfile]
) -> None:
    scores = {}
    for item in sample:
        scores[item.name] = np.zeros(item.values.size)
        scores[item.name][[left for left, _ in item.windows]] = 1.0

    results = nab.score_corpus(scores, sample, profiles.values())

    n_windows = sum(len(item.windows) for item in sample)
    for result in results.values():
        assert result.raw == pytest.approx(result.profile.tp_weight * n_windows)
        assert result.normalised == pytest.approx(100.0)
        assert result.threshold == 1.0


def test_detection_before_window_is_false_positive() -> None:
    windows = [(400, 439)]
    scores = np.zeros(1000)
    scores[399] = 1.0

    raw = _file_score(scores, windows, STANDARD)

    assert raw == pytest.approx(-STANDARD.fp_weight - STANDARD.fn_weight)


def test_false_positive_after_window_costs_less() -> None:
    windows = [(400, 439)]
    just_after = np.zeros(1000)
    just_after[440] = 1.0
    long_after = np.zeros(1000)
    long_after[900] = 1.0

    near = _file_score(just_after, windows, STANDARD) + STANDARD.fn_weight
    far = _file_score(long_after, windows, STANDARD) + STANDARD.fn_weight

    expected = STANDARD.fp_weight * float(nab.scaled_sigmoid(1 / 39))
    assert near == pytest.approx(expected)
    assert far == pytest.approx(-STANDARD.fp_weight)
    assert far < near < 0


def test_only_first_detection_in_window_counts() -> None:
    windows = [(400, 439)]
    first = np.zeros(1000)
    first[410] = 1.0
    both = first.copy()
    both[430] = 1.0

    assert _file_score(both, windows, STANDARD) == _file_score(first, windows, STANDARD)
    assert _file_score(first, windows, STANDARD) == pytest.approx(
        float(nab.scaled_sigmoid(-30 / 40) / nab.scaled_sigmoid(-1.0))
    )


def test_left_edge_earns_tp_weight() -> None:
    scores = np.zeros(1000)
    scores[400] = 1.0

    assert _file_score(scores, [(400, 439)], LOW_FN) == pytest.approx(LOW_FN.tp_weight)


def test_probationary_detections_are_ignored() -> None:
    windows = [(400, 439)]
    scores = np.zeros(1000)
    scores[[10, 100, 149]] = 1.0

    assert nab.probation_length(1000) == 150
    assert _file_score(scores, windows, STANDARD) == -STANDARD.fn_weight
    scores[150] = 1.0
    assert _file_score(scores, windows, STANDARD) == pytest.approx(
        -STANDARD.fn_weight - STANDARD.fp_weight
    )


def test_sweep_matches_fixed_thresholds() -> None:
    rng = np.random.default_rng(3)
    layouts = [(2000, [(500, 599), (1200, 1299)]), (1500, []), (3000, [(2000, 2149)])]
    scores = [np.round(rng.random(length), 3) for length, _ in layouts]
    rewards = [nab.point_rewards(length, windows, STANDARD) for length, windows in layouts]

    threshold, raw = nab.best_threshold(scores, rewards, STANDARD.fn_weight)

    candidates = np.unique(np.concatenate(scores))
    totals = [
        sum(
            nab.score_file(s, r, value, STANDARD.fn_weight).raw
            for s, r in zip(scores, rewards, strict=True)
        )
        for value in candidates
    ]
    assert raw == pytest.approx(max(max(totals), -3.0))
    assert raw == pytest.approx(
        sum(
            nab.score_file(s, r, threshold, STANDARD.fn_weight).raw
            for s, r in zip(scores, rewards, strict=True)
        )
    )


def test_sweep_can_choose_never_firing() -> None:
    rewards = [nab.point_rewards(1000, [(400, 439)], STANDARD)]
    scores = np.zeros(1000)
    scores[200:300] = 0.9

    threshold, raw = nab.best_threshold([scores], rewards, STANDARD.fn_weight)

    assert math.isinf(threshold)
    assert raw == -STANDARD.fn_weight


def test_normalise_maps_null_and_perfect() -> None:
    assert nab.normalise(-97.0, -97.0, 97.0) == 0.0
    assert nab.normalise(97.0, -97.0, 97.0) == 100.0
    assert nab.normalise(0.0, -194.0, 97.0) == pytest.approx(100 * 194 / 291)
    with pytest.raises(ValueError, match="no windows"):
        nab.normalise(0.0, 0.0, 0.0)


def test_corpus_raw_is_sum_of_files(
    sample: list[nab.LabelledSeries], profiles: dict[str, nab.CostProfile]
) -> None:
    rng = np.random.default_rng(11)
    scores = {item.name: rng.random(item.values.size) ** 8 for item in sample}

    results = nab.score_corpus(scores, sample, profiles.values())

    for result in results.values():
        assert result.raw == pytest.approx(sum(item.raw for item in result.files))
        assert result.null == -result.profile.fn_weight * sum(len(i.windows) for i in sample)


def test_windows_are_row_indices(sample: list[nab.LabelledSeries]) -> None:
    ups = next(item for item in sample if item.name.endswith("UPS.csv"))

    assert len(ups.windows) == 5
    left, right = ups.windows[0]
    assert str(ups.timestamps[left]).startswith("2015-03-02T11:17")
    assert right - left + 1 == int(0.10 * ups.values.size / 5)


def test_unknown_file_is_rejected(nab_dir: Path) -> None:
    with pytest.raises(InputError, match="no windows for realTweets/missing.csv"):
        nab.load_corpus(nab_dir, ["realTweets/missing.csv"])


def test_bad_profiles_file_is_rejected(tmp_path: Path) -> None:
    path = tmp_path / "profiles.json"
    path.write_text('{"standard": {"CostMatrix": {"tpWeight": 1.0}}}')

    with pytest.raises(InputError, match="profiles.json"):
        nab.load_profiles(path)
