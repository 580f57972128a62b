"""Command line of the sensor model: ``adcforge sim``, ``adcforge ptc``, ``adcforge bench sim``."""

from __future__ import annotations

import json
from pathlib import Path

import click
import numpy as np
import yaml

from adcforge.errors import ConfigError

from . import isp
from .sensor import cfa_channel_map, list_presets, load_config, load_sensor


def _overrides(pairs) -> dict:
    out = {}
    for item in pairs:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected KEY=VALUE (e.g. --set read_noise_e=2.5)")
        key, value = item.split("=", 1)
        out[key.strip()] = yaml.safe_load(value)
    return out


def _sensor(name, seed, sets, **extra):
    return load_sensor(name, seed=seed, **{**_overrides(sets), **extra})


sensor_option = click.option(
    "--sensor", "sensor_name", required=True, metavar="PRESET|FILE.yaml",
    help=f"sensor preset ({', '.join(list_presets())}) or a sensor YAML file")
set_option = click.option("--set", "sets", multiple=True, metavar="KEY=VALUE",
                          help="override a sensor YAML key (repeatable), validated like the file")
seed_option = click.option("--seed", default=0, show_default=True,
                           help="sensor instance seed (fixed patterns and noise)")


def test_chart(height: int = 256, width: int = 256) -> np.ndarray:
    """Return a built-in sRGB gray test chart in [0, 1]: step wedge, bars, ramp, and a lamp."""
    img = np.zeros((height, width))
    h3 = height // 3
    steps = 12
    for i in range(steps):  # step wedge, 1.0 down to 1/2048 of white (linear), sRGB encoded
        lin = 2.0 ** (-i)
        x0, x1 = i * width // steps, (i + 1) * width // steps
        img[:h3, x0:x1] = isp.linear_to_srgb(np.array(lin))
    yy, xx = np.mgrid[h3:2 * h3, 0:width]
    period = 2 + (xx * 14 // width)  # bars getting coarser to the right
    img[h3:2 * h3] = 0.2 + 0.6 * ((xx // period) % 2)
    img[2 * h3:] = np.linspace(0, 1, width)[None, :]
    cy, cx, r = height * 5 // 6, width * 5 // 6, max(2, height // 32)
    yy, xx = np.mgrid[0:height, 0:width]
    img[(yy - cy) ** 2 + (xx - cx) ** 2 <= r * r] = 1.0
    return np.repeat(img[..., None], 3, axis=-1)


def _read_srgb(path: Path) -> np.ndarray:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.mode in ("I;16", "I;16B", "I;16L", "I"):
                arr = np.asarray(im, dtype=np.float64) / 65535.0
            else:
                arr = np.asarray(im.convert("RGB"), dtype=np.float64) / 255.0
    except FileNotFoundError:
        raise ConfigError(f"{path}: image not found") from None
    except (UnidentifiedImageError, OSError, ValueError) as exc:
        raise ConfigError(f"{path}: cannot read image ({exc})") from None
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return arr


def _preview(sensor, frame: np.ndarray, photons_white: float) -> np.ndarray:
    """Return an 8-bit sRGB preview of a raw frame (black removed, exposure normalised)."""
    c = sensor.config
    dn = frame.astype(np.float64) - c.black_level_dn
    qe = np.asarray(c.quantum_efficiency, dtype=np.float64)
    channels = cfa_channel_map(c)
    if channels is None:
        lin = dn / (c.conversion_gain_dn_per_e * float(qe) * photons_white)
        rgb = np.repeat(lin[..., None], 3, axis=-1)
    else:
        lin = dn / (c.conversion_gain_dn_per_e * qe[channels] * photons_white)
        rgb = np.zeros(lin.shape[:2] + (3,))
        for ch in range(3):
            mask = channels == ch
            quad = np.where(mask, lin, 0).reshape(c.height // 2, 2, c.width // 2, 2).sum((1, 3))
            count = mask.reshape(c.height // 2, 2, c.width // 2, 2).sum((1, 3))
            rgb[..., ch] = np.kron(quad / count, np.ones((2, 2)))
    if channels is None:
        out = isp.process_gray(np.clip(rgb, 0, 1))
    else:
        out = isp.process(rgb)
    return (out * 255 + 0.5).astype(np.uint8)


def contact_sheet(tiles, labels, path: Path, tile_max: int = 256) -> None:
    """Write a labelled row of RGB uint8 tiles as a PNG."""
    from PIL import Image, ImageDraw

    h, w = tiles[0].shape[:2]
    scale = min(1.0, tile_max / max(h, w))
    tw, th = max(1, round(w * scale)), max(1, round(h * scale))
    if scale < 1 or max(h, w) >= 64:
        up = 1
    else:
        up = max(1, 128 // max(h, w))
    tw, th = tw * up, th * up
    pad, label_h = 6, 16
    sheet = Image.new("RGB", (len(tiles) * (tw + pad) + pad, th + label_h + 2 * pad), "white")
    draw = ImageDraw.Draw(sheet)
    for i, (tile, label) in enumerate(zip(tiles, labels)):
        im = Image.fromarray(tile).resize((tw, th), Image.NEAREST if up > 1 else Image.BILINEAR)
        x = pad + i * (tw + pad)
        sheet.paste(im, (x, pad + label_h))
        draw.text((x, pad), label, fill="black")
    sheet.save(path)


@click.command("sim")
@sensor_option
@click.option("--image", type=click.Path(path_type=Path), default=None,
              help="sRGB image (PNG/JPEG); default: a built-in 256x256 test chart")
@click.option("--photons", type=float, multiple=True,
              help="mean photons per pixel at white; several values may follow one --photons "
                   "(--photons 5 20 100) [default: 5 20 100 1000]")
@click.option("--lux", type=float, default=None,
              help="illuminance at white instead of --photons (555 nm, the sensor's pitch and "
                   "exposure)")
@click.option("--exposure", "exposure_s", type=float, default=None,
              help="exposure time in s (default: the sensor's exposure_s)")
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True)
@seed_option
@set_option
@click.argument("more_photons", nargs=-1, type=float, metavar="")
def sim_command(sensor_name, image, photons, lux, exposure_s, out_dir, seed, sets, more_photons):
    """Simulate a sensor's raw frames of an image at several light levels; write a contact sheet.

    The image is unprocessed to linear raw (inverse tone curve, inverse sRGB, inverse colour
    correction and white balance, Bayer mosaic for a colour sensor; luminance for a mono sensor),
    scaled to the given photons per pixel at white, and captured. The sensor takes the image's
    size. Writes raw_<photons>.png (16-bit DN), frames.npz and contact_sheet.png.
    """
    from .illumination import photons_from_lux

    if more_photons and not photons:
        raise ConfigError(f"unexpected values {' '.join(f'{p:g}' for p in more_photons)}: "
                          f"photon levels go after --photons")
    if lux is not None and photons:
        raise ConfigError("give the light either as --photons or as --lux, not both")
    photons = tuple(photons) + tuple(more_photons) or (5.0, 20.0, 100.0, 1000.0)
    srgb = test_chart() if image is None else _read_srgb(image)
    base = load_config(sensor_name, **_overrides(sets))
    h, w = srgb.shape[:2]
    if base.cfa is not None and (h % 2 or w % 2):
        h, w = h - h % 2, w - w % 2
        srgb = srgb[:h, :w]
        click.echo(f"note: cropped the image to {w}x{h} (a Bayer sensor needs even sizes)")
    if (h, w) != (base.height, base.width):
        click.echo(f"note: sensor size set to the image's, {w}x{h} "
                   f"(configured {base.width}x{base.height})")
    sensor = _sensor(sensor_name, seed, sets, width=w, height=h)
    if sensor.config.cfa is not None:
        linear = isp.unprocess(srgb, pattern=sensor.config.cfa)
    else:
        linear = isp.unprocess_gray(srgb)
    t = sensor.exposure_s if exposure_s is None else exposure_s
    if lux is not None:
        photons = (photons_from_lux(lux, t, sensor.config.pixel_pitch_um),)
        click.echo(f"{lux:g} lx at 555 nm for {t:g} s on {sensor.config.pixel_pitch_um:g} µm "
                   f"pixels = {photons[0]:.4g} photons per pixel at white")
    for p in photons:
        if not p >= 0:
            raise ConfigError(f"--photons {p!r}: must be >= 0 photons per pixel")
    out_dir.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    tiles = [(np.clip(srgb, 0, 1) * 255 + 0.5).astype(np.uint8)]
    labels = ["input (sRGB)"]
    frames = {}
    for p in photons:
        frame = sensor.capture(linear * p, t)
        frames[f"photons_{p:g}"] = frame
        Image.fromarray(frame.astype(np.uint16)).save(out_dir / f"raw_{p:g}.png")
        tiles.append(_preview(sensor, frame, p) if p > 0 else np.zeros_like(tiles[0]))
        labels.append(f"{p:g} ph/px at white")
        click.echo(f"{p:>10g} photons/pixel at white: DN {int(frame.min())}..{int(frame.max())}, "
                   f"mean {frame.mean():.1f}")
    np.savez_compressed(out_dir / "frames.npz", **frames)
    contact_sheet(tiles, labels, out_dir / "contact_sheet.png")
    click.echo(f"wrote {out_dir / 'contact_sheet.png'}, raw_*.png (16-bit DN), frames.npz")


def _parse_roi(text: str):
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise ConfigError(f"--roi {text!r}: expected WIDTHxHEIGHT, e.g. 256x256") from None
    if not (8 <= w <= 65536 and 8 <= h <= 65536):
        raise ConfigError(f"--roi {text!r}: width and height must be 8..65536 pixels")
    return h, w


@click.command("ptc")
@sensor_option
@click.option("-o", "--out", "out_dir", type=click.Path(path_type=Path), required=True)
@click.option("--roi", default="256x256", show_default=True,
              help="measured region WIDTHxHEIGHT (clipped to the sensor)")
@click.option("--levels", default=48, show_default=True, type=click.IntRange(8, 1000),
              help="exposures in the series")
@click.option("--frames", "spatial_frames", default=16, show_default=True,
              type=click.IntRange(2, 1000), help="frames per stack for DSNU/PRNU")
@seed_option
@set_option
def ptc_command(sensor_name, out_dir, roi, levels, spatial_frames, seed, sets):
    """Simulate the EMVA 1288 photon-transfer measurement and analyse it from the frames.

    Writes ptc.json, ptc.md (configured vs recovered), ptc.png and snr.png.
    """
    from rich.progress import Progress

    from . import ptc

    roi_hw = _parse_roi(roi)
    config = load_config(sensor_name, **_overrides(sets))
    if config.cfa is not None:  # whole Bayer quads
        roi_hw = (roi_hw[0] + roi_hw[0] % 2, roi_hw[1] + roi_hw[1] % 2)
    sensor = load_sensor(sensor_name, seed=seed, **{**_overrides(sets),
                                                     "width": min(roi_hw[1], config.width),
                                                     "height": min(roi_hw[0], config.height)})
    with Progress(transient=True) as bar:
        task = bar.add_task("photon transfer", total=None)
        _, _ = ptc.run(sensor, out_dir, levels=levels, spatial_frames=spatial_frames,
                       roi=roi_hw, progress=lambda i, n: bar.update(task, completed=i, total=n))
    click.echo((Path(out_dir) / "ptc.md").read_text())
    click.echo(f"wrote {out_dir}/ptc.json, ptc.md, ptc.png, snr.png")


@click.command("sim")
@click.option("--size", default=2048, show_default=True, type=click.IntRange(16, 16384),
              help="frame is SIZE x SIZE pixels")
@click.option("--photons", default=5000.0, show_default=True, help="flat-field photons per pixel")
@click.option("--repeats", default=3, show_default=True, type=click.IntRange(1, 100))
@click.option("--fast", "fast_above", type=float, default=None, metavar="E",
              help="also time the Gaussian fast mode above E electrons and report its error")
@click.option("--pyxel-python", type=click.Path(dir_okay=False), default=None,
              help="a Python with pyxel-sim installed (default: this one, or "
                   "$ADCFORGE_PYXEL_PYTHON)")
@click.option("--no-pyxel", is_flag=True, help="skip the Pyxel side-by-side run")
@click.option("-o", "--out", "out_json", type=click.Path(path_type=Path), default=None,
              help="also write the figures as JSON")
def bench_sim_command(size, photons, repeats, fast_above, pyxel_python, no_pyxel, out_json):
    """Print Mpix/s of the sensor model (numpy, torch CPU/CUDA) beside Pyxel's."""
    from . import bench

    if fast_above is not None and not fast_above >= 1:
        raise ConfigError(f"--fast {fast_above!r}: the Gaussian threshold must be >= 1 e-")
    res = bench.run(size=size, photons=photons, repeats=repeats, with_pyxel=not no_pyxel,
                    pyxel_python=pyxel_python, fast_above=fast_above,
                    progress=lambda msg: click.echo(f"  timing {msg} ...", err=True))
    click.echo(bench.report(res))
    if out_json:
        out_json.parent.mkdir(parents=True, exist_ok=True)
        out_json.write_text(json.dumps(res, indent=1))


def register(main, bench):
    """Add ``sim`` and ``ptc`` to the main group and ``sim`` to the bench group."""
    main.add_command(sim_command, "sim")
    main.add_command(ptc_command, "ptc")
    bench.add_command(bench_sim_command, "sim")
