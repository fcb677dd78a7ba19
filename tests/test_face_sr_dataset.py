"""FaceSRDataset on faces prepared from the staged FFHQ faces: shapes, boxes, flip equivariance, backends, loaders."""

import random
from collections import Counter

from facesr_kd.face.components import COMPONENTS, flip_boxes, load_boxes_file, template_boxes
from facesr_kd.utils.options import OptionError, check_options

import cv2
import numpy as np
import pytest
import torch
from basicsr.data import build_dataloader, build_dataset
from basicsr.data.data_sampler import EnlargedSampler
from basicsr.data.prefetch_dataloader import CPUPrefetcher
from basicsr.utils.registry import DATASET_REGISTRY

from .conftest import FACEXLIB_WEIGHTS, ffhq_ids


@pytest.fixture(scope='module')
def prepared(tmp_path_factory, shared_data):
    """Six FFHQ test faces prepared with detected five-point boxes, on disk and in LMDB."""
    from facesr_kd.data import prepare as prep

    root = tmp_path_factory.mktemp('prepared')
    src = root / 'in'
    src.mkdir()
    for p in ffhq_ids(0, 6):
        (src / p.name).symlink_to(p)
    out = root / 'out'
    prep.prepare_faces(str(src), str(out), aligned=True, aligned_boxes='detect', det_model='retinaface_mobile0.25',
                       model_root=str(FACEXLIB_WEIGHTS), lmdb=True, workers=1, progress=False)  # fmt: skip
    return out


def _opt(out, **kw):
    opt = {
        'name': 'faces',
        'type': 'FaceSRDataset',
        'phase': 'val',
        'dataroot_gt': str(out / 'hr'),
        'dataroot_lq': str(out / 'lr_x8'),
        'meta_info_file': str(out / 'meta_info.txt'),
        'boxes_file': str(out / 'boxes.json'),
        'io_backend': {'type': 'disk'},
        'scale': 8,
        'gt_size': 256,
    }
    opt.update(kw)
    return {k: v for k, v in opt.items() if v is not None}


def test_registered_and_item_contract(prepared):
    assert DATASET_REGISTRY.get('FaceSRDataset') is not None
    ds = build_dataset(_opt(prepared))
    assert len(ds) == 6 and ds.box_source == 'landmarks5'
    boxes, _ = load_boxes_file(prepared / 'boxes.json')
    item = ds[2]
    assert item['lq'].shape == (3, 32, 32) and item['gt'].shape == (3, 256, 256)
    assert item['lq'].dtype == item['gt'].dtype == torch.float32
    assert 0 <= item['gt'].min() and item['gt'].max() <= 1 and 0 <= item['lq'].min() and item['lq'].max() <= 1
    assert item['boxes'].dtype == torch.float32 and item['boxes'].shape == (len(COMPONENTS), 4)
    np.testing.assert_allclose(item['boxes'].numpy(), boxes['00002.png'])
    assert item['gt_path'] == str(prepared / 'hr' / '00002.png')
    assert item['lq_path'] == str(prepared / 'lr_x8' / '00002.png')
    # RGB order: the gt's first channel is the red channel of the (BGR) PNG.
    bgr = cv2.imread(item['gt_path'])
    np.testing.assert_allclose(item['gt'][0].numpy(), bgr[..., 2] / 255.0, atol=1e-6)


def test_lr_on_the_fly_equals_prepared_lr_and_x4(prepared):
    with_files = build_dataset(_opt(prepared))
    on_the_fly = build_dataset(_opt(prepared, dataroot_lq=None))
    for i in range(2):
        torch.testing.assert_close(on_the_fly[i]['lq'], with_files[i]['lq'], atol=1e-6, rtol=0)
    x4 = build_dataset(_opt(prepared, dataroot_lq=None, scale=4))
    assert x4[0]['lq'].shape == (3, 64, 64) and x4[0]['gt'].shape == (3, 256, 256)


def test_lmdb_backend_matches_disk(prepared):
    disk = build_dataset(_opt(prepared))
    lmdb = build_dataset(
        _opt(
            prepared,
            dataroot_gt=str(prepared / 'hr.lmdb'),
            dataroot_lq=str(prepared / 'lr_x8.lmdb'),
            meta_info_file=None,
            io_backend={'type': 'lmdb'},
        )
    )
    assert len(lmdb) == len(disk)
    a, b = disk[3], lmdb[3]
    for key in ('lq', 'gt', 'boxes'):
        torch.testing.assert_close(a[key], b[key])
    assert b['gt_path'] == '00003'


def test_boxes_valid_and_flip_equivariant(prepared):
    plain = build_dataset(_opt(prepared))
    train = build_dataset(_opt(prepared, phase='train', use_hflip=True))
    for i in range(len(plain)):
        boxes = plain[i]['boxes'].numpy()
        cx, cy = (boxes[:, 0] + boxes[:, 2]) / 2, (boxes[:, 1] + boxes[:, 3]) / 2
        assert (boxes >= 0).all() and (boxes <= 256).all()
        assert cx[0] < cx[1] and max(cy[0], cy[1]) < cy[2] < cy[3] and cy[3] == cy.max()
    ref = plain[1]
    seen = set()
    for seed in range(20):
        random.seed(seed)
        item = train[1]
        flipped = not torch.equal(item['gt'], ref['gt'])
        seen.add(flipped)
        if flipped:
            torch.testing.assert_close(item['gt'], ref['gt'].flip(-1))
            torch.testing.assert_close(item['lq'], ref['lq'].flip(-1))
            torch.testing.assert_close(item['boxes'], flip_boxes(ref['boxes'], 256))
            # Still image-left first: the mirrored right eye is now the left-eye box.
            assert item['boxes'][0, 0] < item['boxes'][1, 0]
        else:
            torch.testing.assert_close(item['boxes'], ref['boxes'])
    assert seen == {True, False}
    # Validation never augments.
    random.seed(0)
    assert all(torch.equal(plain[1]['gt'], ref['gt']) for _ in range(5))


def test_template_boxes_errors_and_options(prepared):
    ds = build_dataset(_opt(prepared, boxes_file=None, box_source='template'))
    assert ds.box_source == 'template'
    np.testing.assert_allclose(ds[0]['boxes'].numpy(), template_boxes(256), rtol=1e-6)
    with pytest.raises(ValueError, match='box_source: template'):
        build_dataset(_opt(prepared, boxes_file=None))
    with pytest.raises(ValueError, match='holds boxes for 256px faces'):
        build_dataset(_opt(prepared, gt_size=128, scale=4))
    with pytest.raises(ValueError, match='expected 128x128'):
        build_dataset(_opt(prepared, boxes_file=None, box_source='template', gt_size=128, dataroot_lq=None))[0]

    opt = {'name': 'x', 'model_type': 'SRModel', 'datasets': {'train': _opt(prepared, phase='train')}}
    check_options(opt)
    opt['datasets']['train']['boxes_fle'] = opt['datasets']['train'].pop('boxes_file')
    with pytest.raises(OptionError, match='boxes_fle'):
        check_options(opt)


def test_dataloader_sampler_prefetcher(prepared):
    opt = _opt(prepared, phase='train', use_hflip=True)
    opt.update(num_worker_per_gpu=1, batch_size_per_gpu=4, dataset_enlarge_ratio=2)
    ds = build_dataset(opt)
    sampler = EnlargedSampler(ds, num_replicas=1, rank=0, ratio=2)
    loader = build_dataloader(ds, opt, num_gpu=0, dist=False, sampler=sampler, seed=0)
    prefetcher = CPUPrefetcher(loader)
    batch = prefetcher.next()
    assert batch['lq'].shape == (4, 3, 32, 32) and batch['gt'].shape == (4, 3, 256, 256)
    assert batch['boxes'].shape == (4, 4, 4) and len(batch['gt_path']) == 4
    # DDP: two ranks split the enlarged epoch, every face twice in all.
    ranks = [list(EnlargedSampler(ds, num_replicas=2, rank=r, ratio=2)) for r in range(2)]
    assert len(ranks[0]) == len(ranks[1]) == len(ds)
    assert Counter(ranks[0] + ranks[1]) == {i: 2 for i in range(len(ds))}
