"""The meta-analysis outputs the rules declare agree with the keys the package reads."""

from mirrorflow.meta import ale, contrast, macm
from mirrorflow.meta.outputs import (
    ALE_MAPS,
    CONTRAST_MAPS,
    MACM_MAPS,
    contrast_directions,
    early_stop_settings,
)


def test_declared_maps_hold_the_keys_the_package_thresholds():
    assert {ale.CLUSTER_LOGP_KEY, ale.VOXEL_LOGP_KEY} <= set(ALE_MAPS)
    assert macm.VOXEL_LOGP_KEY in MACM_MAPS and len(MACM_MAPS) == 6
    assert {contrast.Z_KEY, contrast.P_KEY} <= set(CONTRAST_MAPS)
    assert len(ALE_MAPS) == len(set(ALE_MAPS)) == 10 and len(CONTRAST_MAPS) == 12


def test_contrast_directions_in_config_order():
    assert contrast_directions(["mimicry", "contagion"]) == [
        "mimicryGtContagion", "contagionGtMimicry"]


def test_early_stop_settings_only_when_on():
    spec = {"early_stop": None, "alpha": 0.05, "level": "cluster", "n_iters": 10}
    assert early_stop_settings(spec) is None
    spec["early_stop"] = 0.05
    assert early_stop_settings(spec, ("early_stop", "alpha", "level")) == {
        "early_stop": 0.05, "alpha": 0.05, "level": "cluster"}
