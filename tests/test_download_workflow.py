"""The real download and prepare rules, through Snakemake, against a fixture HTTP server."""

import hashlib

import pandas as pd
import pytest
import yaml

from .test_download import FileServer, build_cub_tgz, build_octdl
from .test_workflow import REPO, snakemake


def _sha256(path):
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.mark.integration
def test_download_verify_extract_prepare_through_snakemake(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    build_cub_tgz(src / "CUB_200_2011.tgz", per_class=4)
    zip_path, csv_path = build_octdl(src, per_class=6)
    work = tmp_path / "work"
    work.mkdir()
    with FileServer() as server:
        config = {
            "grid": {"datasets": ["cub200", "octdl"]},
            "datasets": {
                "cub200": {
                    "storage_size": 16,
                    "download": [
                        {
                            "file": "CUB_200_2011.tgz",
                            "url": [
                                server.url("missing.tgz"),
                                server.add("CUB_200_2011.tgz", (src / "CUB_200_2011.tgz").read_bytes()),
                            ],
                            "checksum": _sha256(src / "CUB_200_2011.tgz"),
                            "extract": True,
                        }
                    ],
                },
                "octdl": {
                    "storage_size": 16,
                    "download": [
                        {
                            "file": "OCTDL.zip",
                            "url": [server.add("OCTDL.zip", zip_path.read_bytes())],
                            "checksum": _sha256(zip_path),
                            "extract": True,
                        },
                        {
                            "file": "OCTDL_labels.csv",
                            "url": [server.add("OCTDL_labels.csv", csv_path.read_bytes())],
                            "checksum": None,
                            "extract": False,
                        },
                    ],
                },
            },
        }
        overlay = work / "dl.yaml"
        overlay.write_text(yaml.safe_dump(config))
        targets = ["results/data/cub200/manifest.csv", "results/data/octdl/manifest.csv"]
        dry = snakemake(work, "-n", *targets, configs=[REPO / "config.yaml", overlay])
        assert "download_dataset" in dry.stdout
        snakemake(work, "--cores", "2", *targets, configs=[REPO / "config.yaml", overlay])
    cub = pd.read_csv(work / targets[0])
    assert len(cub) == 12 and set(cub["split"]) == {"train", "heldout"}
    octdl = pd.read_csv(work / targets[1], dtype={"group": str})
    assert len(octdl) == 42
    assert (octdl.groupby("group")["split"].nunique() == 1).all()
    assert (work / "resources/datasets/cub200/CUB_200_2011/images.txt").exists()
    log = (work / "logs/download_dataset/octdl.log").read_text()
    assert _sha256(csv_path).split(":")[1] in log  # the unpinned file's digest, ready to pin


@pytest.mark.integration
def test_wrong_checksum_through_snakemake_leaves_nothing(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    build_cub_tgz(src / "CUB_200_2011.tgz")
    work = tmp_path / "work"
    work.mkdir()
    with FileServer() as server:
        overlay = work / "dl.yaml"
        overlay.write_text(
            yaml.safe_dump(
                {
                    "grid": {"datasets": ["cub200"]},
                    "datasets": {
                        "cub200": {
                            "download": [
                                {
                                    "file": "CUB_200_2011.tgz",
                                    "url": [
                                        server.add(
                                            "CUB_200_2011.tgz", (src / "CUB_200_2011.tgz").read_bytes()
                                        )
                                    ],
                                    "checksum": "md5:" + "0" * 32,
                                    "extract": True,
                                }
                            ]
                        }
                    },
                }
            )
        )
        proc = snakemake(
            work,
            "--cores",
            "1",
            "results/data/cub200/manifest.csv",
            configs=[REPO / "config.yaml", overlay],
            check=False,
        )
    assert proc.returncode != 0
    assert "checksum" in (work / "logs/download_dataset/cub200.log").read_text().lower()
    # nothing of the download (resources/cache holds the config check's timm name list)
    datasets = work / "resources/datasets"
    leftovers = [p for p in datasets.rglob("*") if not p.is_dir()] if datasets.exists() else []
    assert leftovers == []
    assert not (work / "resources/datasets/cub200").exists()
