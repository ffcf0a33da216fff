import numpy as np
import torch
import torch.nn.functional as F

from retention.acquire import data
from retention.training import models
from retention.training import trainer as train
from retention.training.augment import (
    AugmentConfig,
    DeviceTransform,
    center_boxes,
    crop_resize,
    random_resized_boxes,
    scale_of,
)
from retention.training.modelstate import head_names, phase_optimizer
from retention.training.settings import augment_config, train_config
from retention.training.splits import split_data


def test_random_resized_boxes_respect_scale_ratio_and_bounds():
    g = torch.Generator().manual_seed(0)
    boxes = random_resized_boxes(20000, 64, 48, (0.25, 0.8), (3 / 4, 4 / 3), g)
    w, h = boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]
    assert (boxes[:, 0] >= 0).all() and (boxes[:, 1] >= 0).all()
    assert (boxes[:, 2] <= 48).all() and (boxes[:, 3] <= 64).all()
    area = scale_of(boxes, 64, 48)
    # rounding to whole pixels moves the area by at most about one row and column
    slack = (w + h + 1) / (64 * 48)
    assert (area >= 0.25 - slack).all() and (area <= 0.8 + slack).all()
    aspect = w / h
    assert aspect.min() > 0.7 and aspect.max() < 1.4
    # the draws cover the range, not one corner of it
    assert area.min() < 0.3 and area.max() > 0.75


def test_boxes_fall_back_to_a_centre_crop_when_nothing_fits():
    g = torch.Generator().manual_seed(0)
    boxes = random_resized_boxes(50, 10, 100, (0.9, 1.0), (1.0, 1.0), g)  # square of 90% area cannot fit
    assert torch.allclose(boxes, torch.tensor([[45.0, 0.0, 55.0, 10.0]]).expand(50, 4))


def test_crops_have_the_model_size_and_flips_about_half():
    images = torch.arange(2 * 3 * 8 * 8, dtype=torch.float32).view(2, 3, 8, 8).remainder(251).byte()
    images = images.repeat(1000, 1, 1, 1)
    t = DeviceTransform(
        8,
        (0, 0, 0),
        (1 / 255,) * 3,
        1.0,
        AugmentConfig(enabled=True, scale=(1.0, 1.0), ratio=(1.0, 1.0), flip=0.5),
    )
    out = t.train(images, torch.Generator().manual_seed(1))
    assert out.shape == (2000, 3, 8, 8)
    plain = images.float()
    same = (out - plain).abs().amax(dim=(1, 2, 3)) < 1e-4
    flipped = (out - plain.flip(-1)).abs().amax(dim=(1, 2, 3)) < 1e-4
    assert (same ^ flipped).all(), "every output is the image or its mirror"
    assert 0.45 < flipped.float().mean() < 0.55


def test_transform_is_seeded_and_deterministic():
    images = torch.randint(0, 255, (64, 3, 20, 20), dtype=torch.uint8)
    t = DeviceTransform(16, (0.5,) * 3, (0.25,) * 3, 0.875, augment_config({}))
    a = t.train(images, torch.Generator().manual_seed(7))
    b = t.train(images, torch.Generator().manual_seed(7))
    c = t.train(images, torch.Generator().manual_seed(8))
    assert torch.equal(a, b)
    assert not torch.equal(a, c)


def test_identity_crop_is_exact_and_centre_crop_matches_interpolate():
    images = torch.randint(0, 255, (4, 3, 12, 12), dtype=torch.uint8)
    same = crop_resize(images, center_boxes(4, 12, 12, 1.0), 12)
    assert torch.equal(same, images.float())
    half = crop_resize(images, torch.tensor([[0.0, 0.0, 12.0, 12.0]]).expand(4, 4), 6)
    np.testing.assert_allclose(half.numpy(), F.avg_pool2d(images.float(), 2).numpy(), atol=1e-4)


def _reference_run(model, tr, ho, mean, std, cfg, seed):
    """A plain pipeline: normalised float tensors, a DataLoader, the textbook loop."""

    def norm(split):
        x = torch.from_numpy(split.images).permute(0, 3, 1, 2).float()
        return (x - torch.tensor(mean).view(1, 3, 1, 1) * 255) / (torch.tensor(std).view(1, 3, 1, 1) * 255)

    x_tr, y_tr = norm(tr), torch.as_tensor(tr.labels)
    x_ho, y_ho = norm(ho), torch.as_tensor(ho.labels)
    order = torch.Generator().manual_seed(seed)  # the same stream as the fast path's sampler
    records = []

    def evaluate():
        model.eval()
        rows = []
        with torch.no_grad():
            for x, y in ((x_tr, y_tr), (x_ho, y_ho)):
                logits = model(x)
                p = logits.softmax(1)
                rows.append((p.argmax(1).numpy(), p[torch.arange(len(y)), y].numpy()))
        return rows

    n_batches = len(y_tr) // cfg.batch_size + (1 if len(y_tr) % cfg.batch_size > 1 else 0)
    step = 0
    for phase, n_epochs in (("warmup", cfg.warmup_epochs), ("finetune", cfg.epochs)):
        opt = phase_optimizer(
            dict(model.named_parameters()), head_names(model), phase, cfg, torch.device("cpu"), seed_dims=0
        )
        model.train(phase == "finetune")
        step = 0
        for _ in range(n_epochs):
            perm = torch.randperm(len(y_tr), generator=order)
            loader = torch.utils.data.DataLoader(
                torch.utils.data.TensorDataset(x_tr, y_tr), batch_size=cfg.batch_size, sampler=perm.tolist()
            )
            for x, y in loader:
                lr = cfg.head_lr if phase == "warmup" else cfg.lr * train.cosine(step, cfg.epochs * n_batches)
                for g in opt.param_groups:
                    g["lr"] = lr
                loss = F.cross_entropy(model(x), y)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                step += 1
            records.append(evaluate())
            model.train(phase == "finetune")
    return records


def test_fast_path_equals_plain_reference_path_without_augmentation():
    prepared = data.prepare_dataset("digits", None, storage_size=8)
    keep = np.r_[0:161, 1500:1560]
    manifest, images = prepared.manifest.iloc[keep].reset_index(drop=True), prepared.images[keep]
    tr = split_data(manifest, images, "train")
    ho = split_data(manifest, images, "heldout")
    names = data.class_names(prepared.manifest)
    cfg = train_config(
        {
            "warmup_epochs": 1,
            "epochs": 2,
            "batch_size": 32,
            "head_lr": 3e-3,
            "eval_batch_size": 1000,
            "augment": {"enabled": False},
            "channels_last": False,
        },
        {"lr": 3e-3},
    )
    results = []
    for path in ("fast", "reference"):
        train.seed_everything(3)
        model = models.create_model("test_resnet", len(names))
        icfg = models.InputConfig(size=8, mean=(0.5, 0.4, 0.3), std=(0.2, 0.25, 0.3), crop_pct=1.0)
        if path == "fast":
            (res,) = train.make_trainer([model], [3], icfg, tr, ho, names, cfg, progress=False).run_all()
            res = res.traces
            results.append(
                [
                    (
                        (res["pred"][:, k], res["p_true"][:, k]),
                        (res["heldout_pred"][:, k], res["heldout_p_true"][:, k]),
                    )
                    for k in range(3)
                ]
            )
        else:
            results.append(_reference_run(model, tr, ho, icfg.mean, icfg.std, cfg, 3))
    for fast_epoch, ref_epoch in zip(*results):
        for (fp, fq), (rp, rq) in zip(fast_epoch, ref_epoch):
            np.testing.assert_array_equal(fp, rp)
            np.testing.assert_allclose(fq, rq, rtol=1e-4, atol=1e-6)
