#!/usr/bin/env python3
"""Writes the small images and torchvision reference tensors that test/unit/data-*.test.ts compare against.

Run with Debian's Python (it has numpy, PIL, torch and torchvision): /usr/bin/python3 scripts/gen_image_fixtures.py
Outputs (all small, committed; the tests never run Python):
  test/testdata/images/<class>/<file>          an ImageFolder-style tree: JPEG (RGB, grayscale, CMYK), PNG (RGB,
                                               RGBA), WebP; sizes chosen to cover downscaling by ~1.1x to ~4.3x (the latter
                                               past libvips' box pre-shrink threshold) and one upscale
  test/testdata/images-expected/rgb-r40-c32.npy   float32 [n,3,32,32]: ImageFolder's loader (convert('RGB'))
                                               + Resize(40) + CenterCrop(32) + ToTensor(), in ImageFolder order
  test/testdata/images-expected/gray-r40-c32.npy  float32 [n,1,32,32]: the same with convert('L')
  test/testdata/images-expected/gray-r24-c30.npy  float32 [n,1,30,30]: convert('L') + Resize(24) + CenterCrop(30), where
                                               CenterCrop pads with zeros
  test/testdata/images-expected/labels.npy     int64 [n]: ImageFolder's targets
  test/testdata/images-expected/files.txt      the files in ImageFolder order, relative to images/
  test/testdata/npy/*.npy                      numpy-written arrays (each dtype, format 2.0, Fortran order)
"""
import os

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from torchvision import datasets, transforms

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "test", "testdata")
IMAGES = os.path.join(ROOT, "images")
EXPECTED = os.path.join(ROOT, "images-expected")
NPY = os.path.join(ROOT, "npy")
RESIZE, CROP = 40, 32


def gradient(w, h, rng):
    """Smooth colour ramps in both directions: exercises the interpolation weights, not just edges."""
    x = np.linspace(0, 1, w)[None, :, None]
    y = np.linspace(0, 1, h)[:, None, None]
    phase = rng.uniform(0, 2 * np.pi, size=(1, 1, 3))
    rgb = 0.5 + 0.5 * np.sin(2.5 * np.pi * x + 1.7 * np.pi * y + phase)
    return (rgb * 255).round().astype(np.uint8)


def shapes(img, rng, count):
    """Hard edges at non-integer positions after resizing: where kernels differ most."""
    draw = ImageDraw.Draw(img)
    w, h = img.size
    fill_mode = len(img.getbands())
    for i in range(count):
        box = sorted(rng.integers(0, w, 2).tolist()), sorted(rng.integers(0, h, 2).tolist())
        xy = [box[0][0], box[1][0], box[0][1], box[1][1]]
        colour = tuple(int(c) for c in rng.integers(0, 256, fill_mode))
        if fill_mode == 1:
            colour = colour[0]
        if i % 3 == 0:
            draw.ellipse(xy, fill=colour)
        elif i % 3 == 1:
            draw.rectangle(xy, outline=colour, width=2)
        else:
            draw.line(xy, fill=colour, width=1)
    return img


def noise(w, h, rng, channels, blur):
    """Band-limited noise: texture with energy near the Nyquist frequency of the output."""
    n = rng.integers(0, 256, size=(h, w, channels), dtype=np.uint8)
    img = Image.fromarray(n[:, :, 0] if channels == 1 else n)
    return img.filter(ImageFilter.GaussianBlur(blur))


def make_images(rng):
    os.makedirs(os.path.join(IMAGES, "gradients"), exist_ok=True)
    os.makedirs(os.path.join(IMAGES, "textures"), exist_ok=True)

    img = shapes(Image.fromarray(gradient(96, 64, rng)), rng, 7)
    img.save(os.path.join(IMAGES, "gradients", "sunset.jpg"), quality=90)

    rgb = gradient(45, 70, rng)
    alpha = np.tile(np.linspace(0, 255, 45).astype(np.uint8)[None, :], (70, 1))
    img = shapes(Image.fromarray(np.dstack([rgb, alpha]), "RGBA"), rng, 5)
    img.save(os.path.join(IMAGES, "gradients", "tall.png"))

    base = Image.blend(Image.fromarray(gradient(230, 172, rng)), noise(230, 172, rng, 3, 1.2), 0.35)
    img = shapes(base, rng, 12)
    img.save(os.path.join(IMAGES, "gradients", "wide_big.jpg"), quality=85)

    img = shapes(noise(57, 83, rng, 1, 0.8), rng, 6)
    img.save(os.path.join(IMAGES, "textures", "gray_noise.jpg"), quality=92)

    check = ((np.indices((36, 30)).sum(axis=0) // 3) % 2 * 180).astype(np.uint8)
    rgb = gradient(30, 36, rng) // 2 + check[:, :, None] // 2
    Image.fromarray(rgb).save(os.path.join(IMAGES, "textures", "small_upscale.png"))

    img = shapes(Image.blend(Image.fromarray(gradient(64, 50, rng)), noise(64, 50, rng, 3, 0.7), 0.5), rng, 4)
    img.save(os.path.join(IMAGES, "textures", "leaf.webp"), quality=90)

    # Adobe-style CMYK JPEG (ImageNet has a few): PIL converts CMYK by formula, not through a colour profile.
    img = shapes(Image.fromarray(gradient(44, 48, rng)), rng, 5).convert("CMYK")
    img.save(os.path.join(IMAGES, "textures", "cmyk.jpg"), quality=90)


def make_expected():
    os.makedirs(EXPECTED, exist_ok=True)
    pipeline = transforms.Compose([transforms.Resize(RESIZE), transforms.CenterCrop(CROP), transforms.ToTensor()])
    rgb = datasets.ImageFolder(IMAGES, transform=pipeline)  # its default loader converts to RGB
    gray = datasets.ImageFolder(IMAGES, transform=pipeline, loader=lambda p: Image.open(p).convert("L"))
    np.save(os.path.join(EXPECTED, f"rgb-r{RESIZE}-c{CROP}.npy"), np.stack([x.numpy() for x, _ in rgb]))
    np.save(os.path.join(EXPECTED, f"gray-r{RESIZE}-c{CROP}.npy"), np.stack([x.numpy() for x, _ in gray]))
    padded = transforms.Compose([transforms.Resize(24), transforms.CenterCrop(30), transforms.ToTensor()])
    gray_padded = datasets.ImageFolder(IMAGES, transform=padded, loader=lambda p: Image.open(p).convert("L"))
    np.save(os.path.join(EXPECTED, "gray-r24-c30.npy"), np.stack([x.numpy() for x, _ in gray_padded]))
    np.save(os.path.join(EXPECTED, "labels.npy"), np.array(rgb.targets, dtype=np.int64))
    with open(os.path.join(EXPECTED, "files.txt"), "w") as f:
        for path, _ in rgb.samples:
            f.write(os.path.relpath(path, IMAGES).replace(os.sep, "/") + "\n")


def make_npy():
    """Arrays exactly as numpy writes them, so the reader is tested against the format's owner."""
    os.makedirs(NPY, exist_ok=True)
    values = np.arange(24).reshape(2, 3, 4)
    np.save(os.path.join(NPY, "float32.npy"), (values / 8 - 1).astype("<f4"))
    np.save(os.path.join(NPY, "float64.npy"), (values / 3).astype("<f8"))
    np.save(os.path.join(NPY, "uint8.npy"), (values * 10).astype("|u1"))
    np.save(os.path.join(NPY, "int32.npy"), (values - 12).astype("<i4") * 100000)
    np.save(os.path.join(NPY, "int64-labels.npy"), np.array([9, 2, 1, 1, 6], dtype="<i8"))
    np.save(os.path.join(NPY, "scalar.npy"), np.float32(2.5))
    np.save(os.path.join(NPY, "empty.npy"), np.zeros((0, 3), dtype="<f4"))
    with open(os.path.join(NPY, "v2.npy"), "wb") as f:
        np.lib.format.write_array(f, (values / 8 - 1).astype("<f4"), version=(2, 0))
    np.save(os.path.join(NPY, "fortran.npy"), np.asfortranarray((values / 8).astype("<f4")))
    np.save(os.path.join(NPY, "big-endian.npy"), (values / 8).astype(">f4"))


def main():
    rng = np.random.default_rng(20241107)
    make_images(rng)
    make_expected()
    make_npy()


if __name__ == "__main__":
    main()
