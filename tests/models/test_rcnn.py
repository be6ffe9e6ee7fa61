"""R-CNN: the context warp on hand-computed cases, the two heads, training, the proposal
provider (memo, disk cache, a data set's precomputed file) and bad input."""

import pytest
import torch

from modernvision._errors import InvalidArgumentError
from modernvision.classic.proposal_cache import ProposalSettings
from modernvision.data import SceneConfig, make_scenes, scene_instances
from modernvision.models import create, get_entry
from modernvision.models.detection import Detections
from modernvision.models.detection._proposals import ProposalProvider
from modernvision.models.detection.rcnn import (
    SVMPredictor,
    SVMSettings,
    _fit_svm,
    fit_class_svms,
    svm_region_labels,
    warp_regions,
)

TINY = dict(proposal_top=40, box_batch_size_per_image=16)


def _scene(seed: int = 0) -> tuple[torch.Tensor, dict]:
    """A dark 64x64 image with one bright square (class 1) and one grey bar (class 2)."""
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(3, 64, 64, generator=g) * 0.1
    image[:, 10:30, 12:32] = 0.9
    image[1, 40:56, 36:60] = 0.6
    target = {"boxes": torch.tensor([[12.0, 10, 32, 30], [36, 40, 60, 56]]),
              "labels": torch.tensor([1, 2])}
    return image, target


def test_warp_dilates_by_the_context_and_samples_pixel_centres():
    # S = 8, p = 2: the box grows by 8 / 4 = 2 about its centre; a 4x4 box becomes the 8x8
    # window [2, 10) and is sampled 1:1 at pixel centres, so the crop is the pixels exactly.
    image = torch.arange(3 * 12 * 12, dtype=torch.float64).reshape(3, 12, 12)
    crop = warp_regions(image, torch.tensor([[4.0, 4, 8, 8]]), 8, context_padding=2)
    assert crop.shape == (1, 3, 8, 8)
    torch.testing.assert_close(crop[0], image[:, 2:10, 2:10])
    # Without context the 4x4 box alone is upsampled 2x: output pixel j's centre is at edge
    # coordinate 4 + (j + 0.5) / 2, i.e. pixel-index coordinate 3.75 + j / 2, and the image
    # (value 12 row + col) is linear, so bilinear sampling gives 12 y + x exactly.
    plain = warp_regions(image, torch.tensor([[4.0, 4, 8, 8]]), 8, context_padding=0)
    centres = 3.75 + 0.5 * torch.arange(8, dtype=torch.float64)
    torch.testing.assert_close(plain[0, 0], 12 * centres[:, None] + centres[None, :])


def test_warp_fills_outside_the_image_with_zero_the_mean_after_normalising():
    image = torch.ones(1, 6, 6, dtype=torch.float64)
    # A 2x2 box in the top-left corner with p = 1 of S = 4: window [-1, 3) -> 1 pixel outside.
    crop = warp_regions(image, torch.tensor([[0.0, 0, 2, 2]]), 4, context_padding=1)[0, 0]
    assert torch.all(crop[0] == 0) and torch.all(crop[:, 0] == 0)
    torch.testing.assert_close(crop[1:, 1:], torch.ones(3, 3, dtype=torch.float64))


def test_warp_refuses_bad_sizes_and_handles_no_boxes():
    image = torch.rand(3, 8, 8)
    assert warp_regions(image, torch.zeros(0, 4), 8, 2).shape == (0, 3, 8, 8)
    with pytest.raises(InvalidArgumentError, match="context_padding"):
        warp_regions(image, torch.zeros(1, 4), 8, 4)
    with pytest.raises(InvalidArgumentError, match=r"Tensor\[K, 4\]"):
        warp_regions(image, torch.zeros(4), 8, 2)


def test_builders_are_registered_detectors_and_refuse_unknown_keywords():
    for name in ("rcnn_alexnet", "rcnn_compact", "rcnn_resnet18"):
        assert get_entry(name).task == "detection"
    with pytest.raises(TypeError, match="warp_sizee"):
        create("rcnn_compact", num_classes=3, warp_sizee=32)


def test_heads_shapes_loss_and_every_parameter_gets_a_gradient():
    torch.manual_seed(0)
    model = create("rcnn_compact", num_classes=3, **TINY)
    image, target = _scene()
    heads = model.roi_heads
    rois = [torch.tensor([[0.0, 0, 20, 20], [10, 10, 40, 50], [5, 5, 6, 6]])]
    logits, deltas = heads.box_forward({"image": image[None]}, rois, [(64, 64)])
    assert logits.shape == (3, 3) and deltas.shape == (3, 12)
    losses = model([image], [target])
    assert set(losses) == {"loss_classifier", "loss_box_reg"}
    sum(losses.values()).backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None]
    assert not missing
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())


def test_eval_chunks_give_the_same_scores_as_one_pass():
    torch.manual_seed(0)
    model = create("rcnn_compact", num_classes=3, chunk_size=7, **TINY).eval()
    image, _ = _scene()
    rois = [model.proposal_provider(image)]
    with torch.no_grad():
        chunked = model.roi_heads.box_forward({"image": image[None]}, rois, [(64, 64)])
        model.roi_heads.chunk_size = 1000
        whole = model.roi_heads.box_forward({"image": image[None]}, rois, [(64, 64)])
    torch.testing.assert_close(chunked, whole)


def test_training_loss_decreases_on_a_tiny_scene():
    torch.manual_seed(0)
    model = create("rcnn_compact", num_classes=3, **TINY)
    images, targets = zip(*[_scene(0), _scene(1)])
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    totals = []
    for _ in range(8):
        loss = sum(model(list(images), list(targets)).values())
        opt.zero_grad()
        loss.backward()
        opt.step()
        totals.append(float(loss.detach()))
    assert model.proposal_provider.computed == 2  # once per image, not once per step
    assert totals[-1] < 0.7 * totals[0], totals


def test_eval_gives_detections_in_the_image_for_lists_and_batches():
    torch.manual_seed(0)
    model = create("rcnn_compact", num_classes=3, **TINY).eval()
    image, _ = _scene()
    with torch.no_grad():
        (det,) = model([image])
        batch = model(torch.stack([image, image]))
    assert isinstance(det, Detections) and len(batch) == 2
    assert len(det) > 0 and (det.boxes >= 0).all() and (det.boxes <= 64).all()
    assert (det.labels >= 1).all() and (det.labels < 3).all()
    torch.testing.assert_close(batch[0].scores, det.scores)


def test_bad_input_is_a_clear_error_or_an_empty_result():
    model = create("rcnn_compact", num_classes=3, **TINY).eval()
    with torch.no_grad():
        # An image too small for any useful proposal: a (possibly empty) result, no crash.
        (det,) = model([torch.rand(3, 2, 2)])
        assert isinstance(det, Detections) and det.boxes.shape[1] == 4
        # No proposals at all: an empty result.
        (det,) = model([torch.rand(3, 32, 32)], proposals=[torch.zeros(0, 4)])
        assert len(det) == 0
        for bad, needle in ((torch.rand(1, 32, 32), "1 channel"),
                            (torch.rand(4, 32, 32), "4 channel")):
            with pytest.raises(InvalidArgumentError, match=needle):
                model([bad])
        with pytest.raises(InvalidArgumentError, match=r"proposals\[0\]"):
            model([torch.rand(3, 32, 32)], proposals=[torch.zeros(5)])
        with pytest.raises(InvalidArgumentError, match="one Tensor"):
            model([torch.rand(3, 32, 32)], proposals=[])
    model.train()
    image, target = _scene()
    losses = model([image], [target], proposals=[torch.zeros(0, 4)])  # ground truth only
    assert all(torch.isfinite(v) for v in losses.values())


def test_provider_memoises_by_content_and_keeps_a_disk_cache(tmp_path):
    settings = ProposalSettings(top=30)
    provider = ProposalProvider(settings, cache_dir=tmp_path)
    image, _ = _scene()
    first = provider(image)
    assert provider(image.clone()) is first and provider.computed == 1
    other = ProposalProvider(settings, cache_dir=tmp_path)
    torch.testing.assert_close(other(image), first)
    assert other.computed == 0  # read from disk
    assert provider(_scene(1)[0]) is not first and provider.computed == 2
    provider.add(image, torch.tensor([[1.0, 2, 3, 4]]))
    assert provider(image).tolist() == [[1.0, 2, 3, 4]]


def test_provider_preloads_a_data_sets_precomputed_proposals(tmp_path):
    root = tmp_path / "scenes"
    make_scenes(root, 2, seed=0, split="val",
                config=SceneConfig(height=48, width=56, max_object_size=30, min_objects=1,
                                   max_objects=2))
    data = scene_instances(root, "val")
    provider = ProposalProvider(ProposalSettings(top=25))
    assert provider.preload(data, cache_file=tmp_path / "p.npz") == 2
    image, _ = data[0]
    provider(image.float() / 255)
    assert provider.computed == 0 and len(provider) == 2


# --- the paper's class SVMs -----------------------------------------------------------------
def test_svm_labels_follow_the_papers_rule():
    gt = torch.tensor([[0.0, 0, 10, 10], [20, 20, 30, 30]])
    props = torch.tensor([[0.0, 0, 10, 5],     # IoU 0.5 with the class-1 box: ignored for 1
                          [0.0, 0, 10, 2],     # IoU 0.2 with it: a negative for class 1
                          [40.0, 40, 50, 50]])  # far from both: a negative for both
    regions = torch.cat([gt, props])
    labels = svm_region_labels(gt, torch.tensor([1, 2]), regions, num_classes=3)
    assert labels.dtype == torch.int8
    # rows: gt class 1, gt class 2, then the proposals; columns: class 1, class 2
    assert labels.tolist() == [[1, -1], [-1, 1], [0, -1], [-1, -1], [-1, -1]]
    # a class without a box in the image: every region is its negative
    none = svm_region_labels(gt[:1], torch.tensor([1]), regions[:2], num_classes=3)
    assert none[:, 1].tolist() == [-1, -1]


def test_hard_negative_mining_adds_the_negatives_inside_the_margin():
    # 1-D points on a line (a second constant feature): positives at +2, 60 easy negatives
    # at -6 and 4 hard ones at +0.5; the first cache (5 random negatives) misses the hard ones.
    g = torch.Generator().manual_seed(0)
    pos = torch.stack([2 + 0.1 * torch.randn(20, generator=g), torch.ones(20)], 1)
    easy = torch.stack([-6 + 0.1 * torch.randn(60, generator=g), torch.ones(60)], 1)
    hard = torch.tensor([[0.5, 1.0], [0.6, 1], [0.4, 1], [0.55, 1]])
    x = torch.cat([pos, easy, hard])
    y = torch.cat([torch.ones(20), -torch.ones(64)]).to(torch.int8)
    settings = SVMSettings(C=10.0, initial_negatives=5, rounds=3)
    # the first cache is the first 5 of a random order of the negatives: none of them hard
    first = torch.randperm(64, generator=torch.Generator().manual_seed(0))[:5]
    assert (first < 60).all()
    weight, bias, log = _fit_svm(x, y, settings, torch.Generator().manual_seed(0))
    assert log["positives"] == 20 and log["negatives"] == 64
    assert log["hard_added"][0] >= 4  # the hard ones (and any easy one inside the margin)
    assert log["cache"][1] >= 4
    margins = x @ weight + bias
    assert (margins[:20] > 0).all() and (margins[20:] < 0).all()  # the hard ones rejected
    # the same as one SVM on every negative
    from sklearn.svm import LinearSVC
    full = LinearSVC(C=10.0, loss="hinge", intercept_scaling=10.0,
                     class_weight={1: 2.0, -1: 1.0}, max_iter=20000, random_state=0)
    full.fit(x.numpy(), y.numpy())
    assert (torch.from_numpy(full.decision_function(x.numpy())) > 0).tolist() == \
        (margins > 0).tolist()


def test_fit_class_svms_installs_liblinears_svms_on_scaled_fc7():
    torch.manual_seed(0)
    model = create("rcnn_compact", num_classes=3, **TINY)
    samples = [_scene(0), _scene(1), _scene(2)]
    bbox_before = model.roi_heads.box_predictor.bbox_pred.weight.clone()
    settings = SVMSettings(initial_negatives=10_000, rounds=0)  # every negative, no mining
    report = fit_class_svms(model, samples, settings)
    svm = model.roi_heads.box_predictor
    assert isinstance(svm, SVMPredictor) and model.training  # the mode is restored
    torch.testing.assert_close(svm.bbox_pred.weight, bbox_before)
    assert report["images"] == 3 and report["classes"][1]["positives"] == 3

    # the oracle: the same fc7 features, labels and scale, fitted by LinearSVC directly
    from sklearn.svm import LinearSVC
    model.eval()
    feats, labels = [], []
    captured = []
    hook = model.roi_heads.box_head.register_forward_hook(lambda m, i, o: captured.append(o))
    with torch.no_grad():
        for image, target in samples:
            regions = torch.cat([target["boxes"], model.proposal_provider(image)])
            captured.clear()
            model([image], proposals=[regions])
            feats.append(torch.cat(captured))
            labels.append(svm_region_labels(target["boxes"], target["labels"], regions, 3))
    hook.remove()
    x, y = torch.cat(feats), torch.cat(labels)
    scale = 20.0 / float(x.norm(dim=1).mean())
    torch.testing.assert_close(float(svm.feature_scale), scale)
    for c in (1, 2):
        keep = y[:, c - 1] != 0
        ref = LinearSVC(C=1e-3, loss="hinge", intercept_scaling=10.0,
                        class_weight={1: 2.0, -1: 1.0}, max_iter=20000, random_state=0)
        ref.fit((x[keep] * scale).numpy(), y[keep, c - 1].numpy())
        # liblinear stops at a tolerance (1e-4) and visits the rows in their order, which
        # differs here: the same SVM up to that, i.e. the same margins on every region
        ours = (x * scale) @ svm.cls_score.weight[c].detach() + float(svm.cls_score.bias[c])
        ref_margin = torch.from_numpy(ref.decision_function((x * scale).numpy())).float()
        assert (ours - ref_margin).abs().max() < 0.01, (ours - ref_margin).abs().max()
        assert ((ours > 0) == (ref_margin > 0)).float().mean() > 0.99
    assert svm.cls_score.weight[0].abs().sum() == 0  # no background SVM

    # scores are the sigmoid of the SVM margins; training the SVM model is refused
    with torch.no_grad():
        (det,) = model([samples[0][0]])
        logits, _ = model.roi_heads.box_predictor(torch.ones(2, svm.cls_score.in_features))
    assert len(det) > 0 and ((det.scores > 0) & (det.scores < 1)).all()
    torch.testing.assert_close(svm.class_scores(logits), torch.sigmoid(logits))
    model.train()
    with pytest.raises(InvalidArgumentError, match="fit_class_svms"):
        model([samples[0][0]], [samples[0][1]])


def test_svm_settings_and_inputs_are_checked():
    with pytest.raises(InvalidArgumentError, match="negative_iou"):
        SVMSettings(negative_iou=0.0)
    with pytest.raises(InvalidArgumentError, match="C must be"):
        SVMSettings(C=0)
    with pytest.raises(InvalidArgumentError, match="evict_margin"):
        SVMSettings(hard_margin=-2.0)
    model = create("rcnn_compact", num_classes=3, **TINY)
    with pytest.raises(InvalidArgumentError, match="samples is empty"):
        fit_class_svms(model, [])
