"""`wgh matrix --shard I/N` deals the combinations; `-j` reaches each combination's run."""

from __future__ import annotations

import argparse

import pytest

from harness.matrix import wgh_run_argv, run_matrix, shard_of


def test_shards_deal_every_combination_once_in_order():
    combos = [(k, b) for k in ("6.1", "6.12", "host") for b in ("kernel", "wireguard-go")]
    for count in range(1, len(combos) + 1):
        shards = [shard_of(combos, i, count) for i in range(1, count + 1)]
        assert sorted(c for shard in shards for c in shard) == sorted(combos)
        assert max(map(len, shards)) - min(map(len, shards)) <= 1
    assert shard_of(combos, 2, 3) == [("6.1", "wireguard-go"), ("host", "kernel")]


def test_jobs_are_passed_to_each_combination_run(tmp_path):
    assert "-j" not in wgh_run_argv("kernel", tmp_path, "r1", ["scenarios"])
    argv = wgh_run_argv("kernel", tmp_path, "r1", ["scenarios"], jobs="auto")
    assert argv[argv.index("-j") + 1] == "auto"


@pytest.mark.parametrize("shard, message", [("4/3", "I must be between 1 and 3"), ("1/9", "only 2 combinations to share")])
def test_a_shard_that_cannot_be_is_refused_before_any_vm_boots(tmp_path, shard, message):
    said = []
    args = argparse.Namespace(kernels="host", backends="kernel,wireguard-go", userspace=None, results_dir=str(tmp_path), files=["scenarios"], shard=shard, jobs=1)
    assert run_matrix(args, None, said.append) == 2
    assert any(message in line for line in said), said


def test_each_combination_run_names_its_engine(tmp_path):
    argv = wgh_run_argv("kernel", tmp_path, "r1", ["scenarios"], engine="mininet")
    assert argv[argv.index("--engine") + 1] == "mininet"
    assert wgh_run_argv("kernel", tmp_path, "r1", ["scenarios"])[argv.index("--engine") + 1] == "netns"


def test_engines_are_a_third_axis_and_an_unknown_one_is_refused_before_any_vm_boots(tmp_path):
    said = []
    args = argparse.Namespace(
        kernels="host", backends="kernel", engines="netns,mininet", userspace=None, results_dir=str(tmp_path), files=["scenarios"], shard="3/2", jobs=1
    )
    assert run_matrix(args, None, said.append) == 2
    assert any("between 1 and 2" in line for line in said), "two engines make two combinations to share"
    said.clear()
    args.engines, args.shard = "netns,lxc", None
    assert run_matrix(args, None, said.append) == 2
    assert any("unknown engine(s) ['lxc']" in line and "mininet" in line for line in said), said


def test_matrix_passes_repeat_to_each_combination(tmp_path):
    assert "--repeat" not in wgh_run_argv("kernel", tmp_path, "r1", ["scenarios"])
    argv = wgh_run_argv("kernel", tmp_path, "r1", ["scenarios"], repeat=3)
    assert argv[argv.index("--repeat") + 1] == "3"
    from harness.cli import build_parser

    assert build_parser().parse_args(["matrix", "--kernels", "6.1", "--repeat", "3"]).repeat == 3
