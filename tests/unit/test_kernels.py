"""Kernel resolution: archive names → kernels, expressions → selections, fetching
checked against the archive's checksums, and the user's own .debs and build trees.

No Ubuntu archive is reachable here: Ubuntu's layout (an unsigned image package, its
modules in linux-modules-* and sch_netem in linux-modules-extra-*) is tested with
small fixture packages built by dpkg-deb, served by a fake apt whose index records
their real sizes and SHA256s."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from harness.kernels import archive, resolve as kernels
from harness.kernels.archive import PackageRecord, parse_records, sha256_of
from harness.kernels.cache import Kernel, cached_kernels
from harness.kernels.names import archive_kernels, matches, release_key
from harness.kernels.select import KernelSpecError, select

DEBIAN_NAMES = """\
linux-image-6.1.0-47-amd64
linux-image-6.1.0-47-amd64-unsigned
linux-image-6.1.0-47-amd64-dbg
linux-image-6.1.0-48-amd64
linux-image-6.1.0-49-amd64
linux-image-6.1.0-56-amd64-unsigned
linux-image-6.1.0-56-rt-amd64-unsigned
linux-image-6.1.0-56-cloud-amd64-unsigned
linux-image-6.1.0-57-amd64
linux-image-6.1.0-57-amd64-unsigned
linux-image-6.12.100+deb12-amd64
linux-image-6.12.107+deb12-amd64-unsigned
linux-image-6.12.117+deb12-amd64-unsigned
linux-image-6.12.117+deb12-arm64-unsigned
linux-image-6.12-amd64
linux-image-6.12-amd64-signed-template
linux-image-amd64
""".splitlines()

UBUNTU_NAMES = """\
linux-image-6.8.0-51-generic
linux-image-unsigned-6.8.0-51-generic
linux-modules-6.8.0-51-generic
linux-modules-extra-6.8.0-51-generic
linux-image-6.8.0-49-generic
linux-modules-6.8.0-49-generic
linux-image-unsigned-6.8.0-51-lowlatency
linux-image-generic
linux-image-virtual
linux-modules-nvidia-550-6.8.0-51-generic
""".splitlines()


def test_debian_names_every_abi_generic_flavour_unsigned_first():
    found = {k.release: k for k in archive_kernels(DEBIAN_NAMES, "amd64")}
    assert list(found) == [
        "6.1.0-47-amd64", "6.1.0-48-amd64", "6.1.0-49-amd64", "6.1.0-56-amd64", "6.1.0-57-amd64",
        "6.12.100+deb12-amd64", "6.12.107+deb12-amd64", "6.12.117+deb12-amd64",
    ]
    assert found["6.1.0-57-amd64"].packages == ("linux-image-6.1.0-57-amd64-unsigned",)
    assert found["6.1.0-48-amd64"].packages == ("linux-image-6.1.0-48-amd64",)  # signed only: the same kernel to QEMU
    assert {k.distro for k in found.values()} == {"debian"}
    assert [k.release for k in archive_kernels(DEBIAN_NAMES, "arm64")] == ["6.12.117+deb12-arm64"]


def test_ubuntu_names_bring_their_module_packages():
    found = {k.release: k for k in archive_kernels(UBUNTU_NAMES, "amd64")}
    assert list(found) == ["6.8.0-49-generic", "6.8.0-51-generic"]  # not lowlatency, not metapackages
    assert found["6.8.0-51-generic"].packages == (
        "linux-image-unsigned-6.8.0-51-generic", "linux-modules-6.8.0-51-generic", "linux-modules-extra-6.8.0-51-generic",
    )
    # no extra package listed: the kernel is still on offer (its netem is missing; the guest says so)
    assert found["6.8.0-49-generic"].packages == ("linux-image-6.8.0-49-generic", "linux-modules-6.8.0-49-generic")
    assert found["6.8.0-51-generic"].distro == "ubuntu"


def test_releases_order_as_versions():
    releases = ["6.12.107+deb12-amd64", "6.1.0-9-amd64", "6.12.100+deb12-amd64", "6.1.0-47-amd64", "6.8.0-51-generic"]
    assert sorted(releases, key=release_key) == [
        "6.1.0-9-amd64", "6.1.0-47-amd64", "6.8.0-51-generic", "6.12.100+deb12-amd64", "6.12.107+deb12-amd64",
    ]
    assert matches("6.1", "6.1.0-47-amd64") and not matches("6.1", "6.12.100+deb12-amd64")
    assert not matches("6.1.0-4", "6.1.0-47-amd64") and matches("6.12.107", "6.12.107+deb12-amd64")


OFFER = archive_kernels(DEBIAN_NAMES, "amd64")


@pytest.mark.parametrize(
    "term, releases",
    [
        ("6.1", ["6.1.0-57-amd64"]),  # the newest 6.1, never 6.12
        ("6.12", ["6.12.117+deb12-amd64"]),
        ("6.1.0-48", ["6.1.0-48-amd64"]),
        ("6.12.107", ["6.12.107+deb12-amd64"]),
        ("6.1.0-57-amd64", ["6.1.0-57-amd64"]),
        ("latest", ["6.12.117+deb12-amd64"]),
        ("6.1.0-47..6.1.0-49", ["6.1.0-47-amd64", "6.1.0-48-amd64", "6.1.0-49-amd64"]),
        ("6.1.0-56..6.12.100", ["6.1.0-56-amd64", "6.1.0-57-amd64", "6.12.100+deb12-amd64"]),
        ("6.12..latest", ["6.12.100+deb12-amd64", "6.12.107+deb12-amd64", "6.12.117+deb12-amd64"]),
        ("6.1..6.1", [k.release for k in OFFER if k.release.startswith("6.1.")]),  # every 6.1: oldest to newest
        ("all", [k.release for k in OFFER]),
    ],
)
def test_select(term, releases):
    assert [k.release for k in select(term, OFFER)] == releases


@pytest.mark.parametrize(
    "term, message",
    [
        ("6.2", r"no kernel in the archive matches '6.2' \(on offer, 8: 6.1.0-47-amd64, .*6.12.117\+deb12-amd64\)"),
        ("6.1.0-4", "no kernel in the archive matches '6.1.0-4'"),
        ("6.12..6.1", "is empty: 6.12.100.* is newer than 6.1.0-57-amd64"),
        ("6.1..", "not of the form A..B"),
        ("6.1.0-47..6.9", "no kernel in the archive matches '6.9'"),
        ("6.1..6.5..6.12", "not of the form A..B"),
    ],
)
def test_selection_errors_say_what_is_on_offer(term, message):
    with pytest.raises(KernelSpecError, match=message):
        select(term, OFFER)


def test_parse_records_reads_apt_cache_show():
    text = """Package: linux-image-6.1.0-47-amd64-unsigned
Version: 6.1.170-3
Description: Linux 6.1 for 64-bit PCs
 The Linux kernel 6.1 and modules for use on PCs with AMD64, Intel 64 or VIA
 Nano processors.
 Size: 7 (a continuation line, not a field)
Filename: pool/main/l/linux/linux-image-6.1.0-47-amd64-unsigned_6.1.170-3_amd64.deb
Size: 70226932
SHA256: CB9A263A6D0D2DEBE8AC20EADC1065FFB8B22D27F4A6471AC1C0314DB341DFB0

Package: linux-image-6.12-amd64
Version: 6.12.118-1~deb12u1
"""
    (record,) = parse_records(text)
    assert record == PackageRecord(
        "linux-image-6.1.0-47-amd64-unsigned", "6.1.170-3",
        "pool/main/l/linux/linux-image-6.1.0-47-amd64-unsigned_6.1.170-3_amd64.deb",
        "cb9a263a6d0d2debe8ac20eadc1065ffb8b22d27f4a6471ac1c0314db341dfb0", 70226932,
    )
    assert record.deb_name == "linux-image-6.1.0-47-amd64-unsigned_6.1.170-3_amd64.deb"


# --- fixture packages and a fake apt ------------------------------------------------


def build_deb(out: Path, package: str, version: str, files: dict[str, bytes]) -> Path:
    """A real .deb (dpkg-deb --build) holding `files`, named as the archive names it."""
    if shutil.which("dpkg-deb") is None:
        pytest.skip("dpkg-deb is missing (apt-get install dpkg)")
    root = out / f"{package}.root"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {package}\nVersion: {version}\nArchitecture: amd64\nMaintainer: fixture <fixture@example.invalid>\nDescription: fixture\n"
    )
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    deb = out / f"{package}_{version}_amd64.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "-Zgzip", "--build", str(root), str(deb)], check=True, capture_output=True)
    shutil.rmtree(root)
    return deb


def ubuntu_debs(out: Path, release: str = "6.8.0-51-generic", version: str = "6.8.0-51.52") -> list[Path]:
    modules = f"lib/modules/{release}"
    return [
        build_deb(out, f"linux-image-unsigned-{release}", version, {f"boot/vmlinuz-{release}": b"not a real kernel"}),
        build_deb(out, f"linux-modules-{release}", version, {
            f"{modules}/kernel/drivers/net/wireguard/wireguard.ko.zst": b"wg",
            f"{modules}/modules.builtin": b"kernel/net/sched/sch_htb.ko\n",
            f"{modules}/modules.order": b"kernel/drivers/net/wireguard/wireguard.ko\n",
            f"boot/System.map-{release}": b"",
        }),
        build_deb(out, f"linux-modules-extra-{release}", version, {f"{modules}/kernel/net/sched/sch_netem.ko.zst": b"netem"}),
    ]


def debian_deb(out: Path, release: str = "6.1.0-47-amd64", with_netem: bool = True) -> Path:
    files = {
        f"boot/vmlinuz-{release}": b"not a real kernel",
        f"lib/modules/{release}/kernel/drivers/net/wireguard/wireguard.ko.xz": b"wg",
    }
    if with_netem:
        files[f"lib/modules/{release}/kernel/net/sched/sch_netem.ko.xz"] = b"netem"
    return build_deb(out, f"linux-image-{release}-unsigned", "6.1.170-3", files)


class FakeApt:
    """apt as the kernel code calls it: package names, `apt-cache show` records (the
    fixture files' real size and SHA256), and `apt-get download` (a copy)."""

    def __init__(self, monkeypatch, debs: list[Path]):
        self.debs = {deb.name.split("_")[0]: deb for deb in debs}
        self.downloads: list[str] = []
        self.index = "\n".join(
            f"Package: {package}\nVersion: {deb.name.split('_')[1]}\nFilename: pool/main/l/linux/{deb.name}\n"
            f"Size: {deb.stat().st_size}\nSHA256: {sha256_of(deb)}\n"
            for package, deb in self.debs.items()
        )
        monkeypatch.setattr(archive, "package_names", lambda: list(self.debs))
        monkeypatch.setattr(archive, "records", self.records)
        monkeypatch.setattr(archive, "apt_download", self.download)

    def records(self, packages):
        found = {}
        for record in parse_records(self.index):
            if record.package in packages:
                found.setdefault(record.package, []).append(record)
        return found

    def download(self, package, into):
        self.downloads.append(package)
        return Path(shutil.copy2(self.debs[package], into))


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("WGH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(kernels, "debian_arch", lambda: "amd64")
    return tmp_path / "cache" / "kernels"


def test_an_ubuntu_kernel_is_fetched_with_its_module_packages(cache, monkeypatch, tmp_path):
    apt = FakeApt(monkeypatch, ubuntu_debs(tmp_path))
    kernel = kernels.resolve("6.8")
    assert kernel.release == "6.8.0-51-generic" and kernel.source == "ubuntu:linux-image-unsigned-6.8.0-51-generic"
    assert kernel.image == cache / "linux-image-unsigned-6.8.0-51-generic" / "boot/vmlinuz-6.8.0-51-generic"
    assert sorted(apt.downloads) == ["linux-image-unsigned-6.8.0-51-generic", "linux-modules-6.8.0-51-generic", "linux-modules-extra-6.8.0-51-generic"]
    # WireGuard from linux-modules, netem from linux-modules-extra: side by side, where virtme-ng looks
    assert (kernel.modules_dir / "kernel/net/sched/sch_netem.ko.zst").is_file()
    assert kernel.missing_features() == []
    contents = json.loads((kernel.image.parent.parent / ".packages.json").read_text())
    assert {p["package"]: p["sha256"] for p in contents["packages"]} == {
        name: sha256_of(deb) for name, deb in apt.debs.items() if name.startswith(("linux-image-unsigned", "linux-modules"))
    }
    # cached: resolved again without a download, and listed as Ubuntu's
    monkeypatch.setattr(archive, "apt_download", lambda *a: pytest.fail("a cached kernel must not be downloaded again"))
    assert kernels.resolve("6.8.0-51") == kernel
    assert [k.source for k in cached_kernels()] == ["ubuntu:linux-image-unsigned-6.8.0-51-generic"]


def test_without_the_extra_package_the_kernel_says_netem_is_missing(cache, monkeypatch, tmp_path):
    FakeApt(monkeypatch, ubuntu_debs(tmp_path)[:2])
    assert kernels.resolve("6.8").missing_features() == ["netem"]


def test_a_download_that_does_not_match_the_archive_is_not_cached(cache, monkeypatch, tmp_path):
    apt = FakeApt(monkeypatch, [debian_deb(tmp_path)])
    good = apt.debs["linux-image-6.1.0-47-amd64-unsigned"]
    damaged = tmp_path / "damaged" / good.name
    damaged.parent.mkdir()
    damaged.write_bytes(good.read_bytes()[:-1] + bytes([good.read_bytes()[-1] ^ 1]))  # same size, one bit off
    monkeypatch.setattr(archive, "apt_download", lambda package, into: Path(shutil.copy2(damaged, into)))
    with pytest.raises(KernelSpecError, match=r"SHA256 [0-9a-f]{64} does not match the archive's"):
        kernels.resolve("6.1")
    assert not (cache / "linux-image-6.1.0-47-amd64-unsigned").exists() and cached_kernels() == []
    damaged.write_bytes(good.read_bytes() + b"x")
    with pytest.raises(KernelSpecError, match="bytes, but the archive's index says"):
        kernels.resolve("6.1")
    # the real one then goes through, and its download folder is gone
    monkeypatch.setattr(archive, "apt_download", apt.download)
    assert kernels.resolve("6.1").missing_features() == []
    assert sorted(p.name for p in cache.iterdir()) == ["linux-image-6.1.0-47-amd64-unsigned"]


def test_a_debian_kernel_without_netem_says_so(cache, monkeypatch, tmp_path):
    FakeApt(monkeypatch, [debian_deb(tmp_path, with_netem=False)])
    assert kernels.resolve("6.1.0-47").missing_features() == ["netem"]


def test_offline_the_cached_kernels_are_on_offer(cache, monkeypatch, tmp_path):
    FakeApt(monkeypatch, [debian_deb(tmp_path)])
    kernels.resolve("6.1")
    monkeypatch.setattr(archive, "package_names", lambda: [])  # no package lists
    assert kernels.expand("all") == ["6.1.0-47-amd64"]
    assert kernels.resolve("6.1").release == "6.1.0-47-amd64"
    with pytest.raises(KernelSpecError, match="no kernel in the archive matches '6.12'"):
        kernels.resolve("6.12")


def test_a_users_deb_and_a_folder_of_debs(cache, tmp_path):
    (tmp_path / "one").mkdir()
    deb = debian_deb(tmp_path / "one", release="6.1.0-99-amd64")
    kernel = kernels.resolve(str(deb))
    assert kernel.release == "6.1.0-99-amd64" and kernel.source == f"deb:{deb.name}" and kernel.missing_features() == []
    (tmp_path / "ubuntu").mkdir()
    ubuntu_debs(tmp_path / "ubuntu")
    kernel = kernels.resolve(str(tmp_path / "ubuntu"))
    assert kernel.release == "6.8.0-51-generic" and kernel.missing_features() == []
    assert kernels.resolve(str(tmp_path / "ubuntu")) == kernel  # cached by content


def build_tree(tree: Path, release: str = "6.13.0-rc1-dev", config: str = "CONFIG_MODULES=y\nCONFIG_WIREGUARD=m\nCONFIG_NET_SCH_NETEM=m\n") -> Path:
    (tree / "arch/x86/boot").mkdir(parents=True)
    (tree / "arch/x86/boot/bzImage").write_bytes(b"built")
    (tree / "include/config").mkdir(parents=True)
    (tree / "include/config/kernel.release").write_text(release + "\n")
    (tree / ".config").write_text(config)
    (tree / "modules.order").write_text("drivers/net/wireguard/wireguard.ko\nnet/sched/sch_netem.ko\n")
    # the kernel's `make modules_install`, reduced to what it leaves behind
    directory = f"$(INSTALL_MOD_PATH)/lib/modules/{release}/kernel"
    (tree / "Makefile").write_text(
        f"modules_install:\n\tmkdir -p {directory}/drivers/net/wireguard {directory}/net/sched\n"
        f"\ttouch {directory}/drivers/net/wireguard/wireguard.ko {directory}/net/sched/sch_netem.ko\n"
    )
    return tree


def test_a_kernel_build_tree_with_its_modules_installed_into_the_cache(cache, tmp_path):
    if shutil.which("make") is None:
        pytest.skip("make is missing")
    tree = build_tree(tmp_path / "linux")
    kernel = kernels.resolve(str(tree))
    assert kernel.release == "6.13.0-rc1-dev" and kernel.source == f"build:{tree}"
    assert kernel.image.read_bytes() == b"built" and kernel.image.is_relative_to(cache)
    assert kernel.missing_features() == []
    (tree / "arch/x86/boot/bzImage").write_bytes(b"rebuilt")  # a new build is a new kernel
    assert kernels.resolve(str(tree)).image.read_bytes() == b"rebuilt"


def test_a_build_tree_without_wireguard_is_refused_naming_the_option(cache, tmp_path):
    tree = build_tree(tmp_path / "linux", config="CONFIG_MODULES=y\nCONFIG_NET_SCH_NETEM=m\n# CONFIG_WIREGUARD is not set\n")
    with pytest.raises(KernelSpecError, match=r"CONFIG_WIREGUARD is not set: the harness needs WireGuard \(scripts/config -m WIREGUARD"):
        kernels.resolve(str(tree))


def test_expressions_expand_to_one_spec_per_kernel(cache, monkeypatch):
    monkeypatch.setattr(kernels, "offer", lambda: OFFER)
    assert kernels.expand("host, 6.1.0-47..6.1.0-49,6.1.0-48, latest") == [
        "host", "6.1.0-47-amd64", "6.1.0-48-amd64", "6.1.0-49-amd64", "6.12.117+deb12-amd64",
    ]
    assert len(kernels.expand("all")) == len(OFFER)
    with pytest.raises(KernelSpecError, match="names several kernels"):
        kernels.resolve("6.1.0-47..6.1.0-49")
    with pytest.raises(KernelSpecError, match=r"not a file, a \.deb, a kernel build tree.*'all' or a range"):
        kernels.expand("6.1,no/such/kernel")


def test_an_image_path_is_used_as_it_is(tmp_path):
    image = tmp_path / "vmlinuz-6.1.0-56-amd64"
    image.write_bytes(b"kernel")
    assert kernels.resolve(str(image)) == Kernel(image, "6.1.0-56-amd64", "path")
