"""Mean BasicSR PSNR/SSIM of a set of restored images, on RGB and on Y: one loop for every benchmark table."""

PSNR_SSIM_KEYS = ('psnr', 'ssim', 'psnr_y', 'ssim_y')


def mean_psnr_ssim(outs, gts, crop_border=0):
    """Mean PSNR/SSIM, RGB and Y (BasicSR's ``calculate_psnr`` / ``calculate_ssim``), of ``outs`` against ``gts``.

    Args:
        outs, gts (Iterable[ndarray]): uint8 BGR images, (H, W, 3), paired in order.
        crop_border (int): Pixels left out at each border.

    Returns:
        dict: ``psnr``, ``ssim``, ``psnr_y``, ``ssim_y``.

    Raises:
        ValueError: No image pairs.
    """
    from basicsr.metrics import calculate_psnr, calculate_ssim

    sums, n = dict.fromkeys(PSNR_SSIM_KEYS, 0.0), 0
    for out, gt in zip(outs, gts):
        for y in (False, True):
            suffix = '_y' if y else ''
            sums['psnr' + suffix] += calculate_psnr(out, gt, crop_border=crop_border, test_y_channel=y)
            sums['ssim' + suffix] += calculate_ssim(out, gt, crop_border=crop_border, test_y_channel=y)
        n += 1
    if not n:
        raise ValueError('no images to score')
    return {k: v / n for k, v in sums.items()}
