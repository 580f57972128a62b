"""The one source of sensor samples for a design (sim.samples) and the DN → sample-word rule."""

import numpy as np
import pytest

from adcforge.design import resolve_design, sensor_to_samples
from adcforge.golden import code_coverage
from sim.samples import PHOTON_GRID, covering_photons, sensor_samples, task_frames, why_no_task

DESIGN = resolve_design("adc4_in12")


def test_sensor_to_samples_keeps_the_most_significant_bits():
    dn = np.array([0, 1, 4095, 65535])
    assert list(sensor_to_samples(dn, 12, 12)) == [0, 1, 4095, 4095]
    assert list(sensor_to_samples(dn, 16, 12)) == [0, 0, 255, 4095]
    assert list(sensor_to_samples(dn, 10, 12)) == [0, 4, 4095, 4095]


@pytest.mark.parametrize("scene", ["ramp", "levels"])
def test_sensor_samples_in_range_and_seeded(scene):
    a, source = sensor_samples(DESIGN, 5000, photons=200.0, seed=3, scene=scene)
    b, _ = sensor_samples(DESIGN, 5000, photons=200.0, seed=3, scene=scene)
    assert len(a) == 5000 and a.min() >= 0 and a.max() < 2**DESIGN.input_bits
    assert np.array_equal(a, b)
    assert "sample = DN >> 0" in source


def test_ramp_scene_spans_dark_and_bright():
    s, _ = sensor_samples(DESIGN, 4096, photons=1000.0, seed=0)
    assert s.max() - s.min() > 500


def test_levels_scene_draws_several_light_levels():
    s, _ = sensor_samples(DESIGN, 8 * 4096, seed=1, scene="levels")
    means = s.reshape(8, -1).mean(axis=1)
    assert len(np.unique(np.round(means, -1))) >= 2


def test_unknown_scene_is_refused():
    with pytest.raises(ValueError, match="unknown scene 'sky'"):
        sensor_samples(DESIGN, 10, scene="sky")


def test_codes_only_design_has_no_task():
    assert "no POST layer" in why_no_task(DESIGN)
    assert task_frames(DESIGN) is None


def test_covering_photons_is_the_lowest_light_that_exercises_every_code():
    d = resolve_design("adc1_in8")
    photons, seen = covering_photons(d, 2000)
    assert seen == d.levels == 2
    s, _ = sensor_samples(d, 2000, photons=photons)
    assert code_coverage(d, s)["codes_seen"] == 2
    lower = [p for p in PHOTON_GRID if p < photons]
    s, _ = sensor_samples(d, 2000, photons=lower[-1])
    assert code_coverage(d, s)["codes_seen"] < 2


def test_code_coverage_counts_each_code():
    d = resolve_design("adc4_in12")
    cover = code_coverage(d, [0, 4095, 4095])
    assert (cover["codes_seen"], cover["codes_total"]) == (2, 16)
    assert cover["code_counts"][0] == 1 and cover["code_counts"][15] == 2
