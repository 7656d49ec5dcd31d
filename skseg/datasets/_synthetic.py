"""Generated signature images: writers, genuine samples and skilled forgeries."""

from numbers import Integral, Real

import numpy as np
from PIL import Image, ImageDraw
from scipy.ndimage import gaussian_filter, gaussian_filter1d
from sklearn.utils import Bunch, check_random_state
from sklearn.utils._param_validation import Interval, validate_params

# Rendering is done this many times larger, then downscaled: cheap antialiasing.
_SUPERSAMPLE = 3
# Trajectory samples per letter: about 1 sample per output pixel of pen travel.
_SAMPLES_PER_LETTER = 36
# Points drawn with one width by one ImageDraw.line call (width follows pressure).
_CHUNK = 8


def _writer(rng):
    """Random parameters of one writer's signature (its 'style')."""
    words = []
    for w in range(rng.randint(1, 4)):
        n_letters = rng.randint(3, 8) if w else rng.randint(4, 8)
        k = 2 * n_letters + 1  # control knots: one per half letter
        up = rng.uniform(0.35, 0.9, k)
        up[rng.rand(k) < 0.25] *= rng.uniform(1.6, 2.4)  # ascenders (l, h, k)
        up[0] *= rng.uniform(1.3, 2.2)  # capital initial
        down = rng.uniform(0.15, 0.5, k)
        down[rng.rand(k) < 0.15] *= rng.uniform(2.0, 3.5)  # descenders (g, y, p)
        words.append(dict(
            n_letters=n_letters,
            up=up,
            down=down,
            loop=rng.uniform(0.05, 0.4, k),  # x oscillation: loops vs strokes
            phase=rng.uniform(-0.4, 1.8, k),  # 0: zig-zag, pi/2: round loops
            advance=rng.uniform(0.35, 0.75, k),  # progression per letter
            pressure=rng.uniform(0.55, 1.0, k),
            gap=rng.uniform(0.3, 1.0),
            rise=rng.normal(0, 0.3),
            # i-dots and t-bars: (letter position, 0 = dot / 1 = bar, offset)
            marks=[(rng.uniform(0.5, n_letters - 0.5), rng.randint(2), rng.normal(0, 0.15))
                   for _ in range(rng.binomial(2, 0.3))],
        ))
    return dict(
        words=words,
        slant=rng.uniform(-0.15, 0.55),
        rotation=rng.normal(0, 0.04),
        aspect=np.exp(rng.normal(0, 0.15)),
        underline=rng.rand() < 0.4,
        underline_shape=rng.uniform(-1, 1, 4),
    )


def _jitter(values, sigma, rng):
    """``values`` times random log-normal factors of mean 1 and spread ``sigma``."""
    # Mean 1, so forgeries (larger sigma) are not larger or wider on average.
    return values * np.exp(rng.normal(-sigma ** 2 / 2, sigma, np.shape(values)))


def _forger(style, rng, strength):
    """A forger's systematic reading of ``style``: shared by all their forgeries."""
    sigma = 0.2 * strength
    words = [dict(
        word,
        up=_jitter(word["up"], sigma, rng),
        down=_jitter(word["down"], sigma, rng),
        loop=_jitter(word["loop"], sigma, rng),
        phase=word["phase"] + rng.normal(0, 1.5 * sigma, len(word["phase"])),
        advance=_jitter(word["advance"], 0.8 * sigma, rng),
        gap=_jitter(word["gap"], 2 * sigma, rng),
        rise=word["rise"] + rng.normal(0, sigma),
        marks=[(u + rng.normal(0, sigma), kind, offset + rng.normal(0, sigma))
               for u, kind, offset in word["marks"]],
    ) for word in style["words"]]
    return dict(
        style,
        words=words,
        slant=style["slant"] + rng.normal(0, 0.5 * sigma),
        aspect=_jitter(style["aspect"], 0.7 * sigma, rng),
        underline_shape=style["underline_shape"] + rng.normal(0, 2 * sigma, 4),
    )


def _smooth_noise(rng, n, sigma, scale):
    """Gaussian-filtered white noise of length ``n``, std about ``scale``."""
    noise = gaussian_filter1d(rng.normal(size=n), sigma, mode="nearest")
    return noise * (scale / max(noise.std(), 1e-9))


def _strokes(style, rng, forged, strength):
    """Pen trajectories of one sample: list of (points (n, 2), pressure (n,))."""
    # Sample-to-sample variation: a forger copying an unfamiliar shape varies
    # more than its owner (their systematic deviations are in the style).
    dev = 0.05 + 0.05 * strength if forged else 0.05
    tremor = 0.025 * strength if forged else 0.0
    strokes = []
    x0 = 0.0
    for word in style["words"]:
        n_letters = word["n_letters"]
        k = len(word["up"])
        params = np.column_stack([
            _jitter(word["up"], dev, rng),
            _jitter(word["down"], dev, rng),
            _jitter(word["loop"], dev, rng),
            word["phase"] + rng.normal(0, 1.5 * dev, k),
            _jitter(word["advance"], 0.8 * dev, rng),
            _jitter(word["pressure"], dev, rng),
        ])
        n = n_letters * _SAMPLES_PER_LETTER
        u = np.linspace(0, n_letters, n)
        # Small smooth timing changes: the same shape written a bit unevenly.
        u_warped = np.clip(u + _smooth_noise(rng, n, n / n_letters / 2, 0.04 + dev / 4),
                           0, n_letters)
        # Cosine interpolation between knots: smooth and never overshooting.
        position = u_warped * ((k - 1) / n_letters)
        left = np.minimum(position.astype(int), k - 2)
        weight = (1 - np.cos(np.pi * (position - left)[:, None])) / 2
        up, down, loop, phase, advance, pressure = (
            params[left] * (1 - weight) + params[left + 1] * weight).T
        theta = 2 * np.pi * u_warped
        x = np.cumsum(advance) * (n_letters / n) + loop * np.cos(theta - phase)
        y = np.sin(theta) * np.where(np.sin(theta) > 0, up, down)
        y = y + word["rise"] * u / n_letters * (1 + rng.normal(0, dev))
        x = x - x[0] + x0
        x0 = x.max() + _jitter(word["gap"], 2 * dev, rng)

        # Pen pressure: a quick attack and a tapered end when written fluently.
        taper = np.minimum(1, np.minimum(np.arange(n), np.arange(n)[::-1])
                           / (_SAMPLES_PER_LETTER * 0.3))
        fluent = 0.3 + 0.7 * taper
        if forged:
            # Slow, careful copying: tremor, blunt stroke ends, hesitations.
            x = x + _smooth_noise(rng, n, 1.5, tremor)
            y = y + _smooth_noise(rng, n, 1.5, tremor)
            blunt = 0.3 + 0.7 * (1 - 0.4 * strength / (1 + strength) * (1 - taper))
            # Same mean pressure as a fluent stroke: blunt ends alone must
            # not make forgeries darker or thicker overall.
            pressure = pressure * blunt * (fluent.mean() / blunt.mean())
        else:
            pressure = pressure * fluent
        points = np.column_stack([x, y])
        cuts = [0, n]
        if forged:
            n_lifts = rng.binomial(3, min(1.0, 0.4 * strength))
            cuts = sorted(set([0, n] + list(rng.randint(n // 8, n - n // 8, n_lifts))))
        for a, b in zip(cuts[:-1], cuts[1:]):
            gap = 2 if a else 0  # a pen lift leaves a small gap
            if b - a - gap > 4:
                strokes.append((points[a + gap:b], pressure[a + gap:b]))

        for at, kind, offset in word["marks"]:
            i = int(np.clip(at / n_letters * n, 0, n - 1))
            top = up.max() * 0.8 + 0.3 + offset * (1 + rng.normal(0, dev))
            cx = x[i] + rng.normal(0, 0.03)
            half = (0.06 if kind == 0 else 0.3) * (1 + rng.normal(0, dev))
            t = np.linspace(-1, 1, 5 if kind == 0 else 12)
            mark = np.column_stack([cx + half * t, top + 0.05 * t * (kind == 0) + 0.03 * t])
            strokes.append((mark, np.full(len(t), 0.8)))

    if style["underline"]:
        left = min(p[:, 0].min() for p, _ in strokes)
        right = max(p[:, 0].max() for p, _ in strokes)
        bottom = min(p[:, 1].min() for p, _ in strokes)
        shape = style["underline_shape"] + rng.normal(0, dev, 4)
        t = np.linspace(0, 1, 120)
        x = left + (right - left) * (0.1 + 0.85 * t + 0.05 * shape[0] * np.sin(np.pi * t))
        y = bottom - 0.2 + 0.25 * shape[1] * np.sin(np.pi * t) + 0.15 * shape[2] * t
        if forged:
            x = x + _smooth_noise(rng, len(t), 1.5, tremor)
            y = y + _smooth_noise(rng, len(t), 1.5, tremor)
        pressure = 0.8 * np.minimum(1, 0.2 + 3 * np.minimum(t, 1 - t))
        strokes.append((np.column_stack([x, y]), pressure))

    # Whole-signature geometry: slant, rotation, proportions.
    slant = style["slant"] + rng.normal(0, 0.6 * dev)
    angle = style["rotation"] + rng.normal(0, 0.03)
    aspect = _jitter(style["aspect"], dev, rng)
    cos, sin = np.cos(angle), np.sin(angle)
    out = []
    for points, pressure in strokes:
        x, y = points.T
        x = (x + slant * y) * aspect
        out.append((np.column_stack([cos * x - sin * y, sin * x + cos * y]), pressure))
    return out


def _render(strokes, rng, image_size):
    """Scan-like uint8 image of ``strokes``: light, uneven paper and dark ink."""
    # Everything below is drawn independently of the label (genuine/forged).
    height = int(round(image_size[0] * rng.uniform(0.85, 1.15)))
    width = int(round(image_size[1] * rng.uniform(0.85, 1.15)))
    points = np.concatenate([p for p, _ in strokes])
    lo, hi = points.min(axis=0), points.max(axis=0)
    extent = np.maximum(hi - lo, 1e-6)
    scale = min(width * rng.uniform(0.6, 0.9) / extent[0],
                height * rng.uniform(0.55, 0.85) / extent[1])
    size = extent * scale
    offset = np.array([rng.uniform(0.04, 0.96) * (width - size[0]),
                       rng.uniform(0.04, 0.96) * (height - size[1])])
    pen = rng.uniform(1.0, 2.6) * min(1.0, height / 100)  # stroke width in pixels

    ss = _SUPERSAMPLE
    canvas = Image.new("L", (width * ss, height * ss), 0)
    draw = ImageDraw.Draw(canvas)
    for points, pressure in strokes:
        xy = (points - lo) * scale + offset
        xy[:, 1] = height - xy[:, 1]  # y grows downwards in images
        xy = xy * ss
        # One width and shade per chunk of points (pressure changes slowly);
        # samples are dense enough that polylines need no joint rounding.
        starts = np.arange(0, len(xy) - 1, _CHUNK)
        chunk_pressure = np.add.reduceat(pressure, starts) / np.diff(
            np.append(starts, len(pressure)))
        widths = (pen * ss * (0.35 + 0.9 * chunk_pressure)).tolist()
        shades = np.clip(140 + 115 * chunk_pressure, 0, 255).astype(int).tolist()
        flat = xy.ravel().tolist()
        for start, w, fill in zip(starts.tolist(), widths, shades):
            draw.line(flat[2 * start:2 * (start + _CHUNK + 1)], fill=fill,
                      width=max(1, round(w)))
            # Round caps and joints between chunks of different width.
            x, y = flat[2 * start:2 * start + 2]
            draw.ellipse([x - w / 2, y - w / 2, x + w / 2, y + w / 2], fill=fill)
        x, y = flat[-2:]
        draw.ellipse([x - w / 2, y - w / 2, x + w / 2, y + w / 2], fill=fill)
    ink = np.asarray(canvas.resize((width, height), Image.Resampling.BOX),
                     dtype=np.float32) / 255

    # Paper: a grey level with a gentle gradient, then ink, blur and sensor noise.
    yy, xx = np.mgrid[0:height, 0:width] / max(height, width)
    direction = rng.normal(size=2)
    paper = rng.uniform(200, 250) + rng.uniform(0, 12) * (
        direction[0] * yy + direction[1] * xx) / np.linalg.norm(direction)
    ink_level = rng.uniform(10, 90)
    image = paper - ink * (paper - ink_level)
    blur = rng.uniform(0, 0.8)
    if blur > 0.1:
        image = gaussian_filter(image, blur)
    image = image + rng.normal(0, rng.uniform(1, 5), image.shape)
    return np.clip(np.rint(image), 0, 255).astype(np.uint8)


@validate_params(
    {
        "n_writers": [Interval(Integral, 1, None, closed="left")],
        "n_genuine": [Interval(Integral, 2, None, closed="left")],
        "n_forgeries": [Interval(Integral, 0, None, closed="left")],
        "image_size": [tuple, list],
        "forgery_strength": [Interval(Real, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_synthetic_signatures(
    n_writers=10,
    n_genuine=12,
    n_forgeries=12,
    *,
    image_size=(120, 240),
    forgery_strength=1.0,
    random_state=None,
):
    """Generate signature-like images of several writers, with skilled forgeries.

    Each writer has a cursive, left-to-right pen trajectory (1 to 3 words of
    looped letters, i-dots and t-bars, an optional underline, a slant and a
    pressure profile). A genuine sample redraws it with small variations
    (timing, proportions, slant, pressure). Skilled forgeries come from 1 to 3
    forgers per writer: each keeps the overall shape but has their own
    systematic errors in letter shapes, spacing, slant and proportions, and
    writes with tremor, blunt stroke ends and pen lifts; their samples vary
    more than the writer's own. Paper grey level, gradient, ink darkness, stroke
    width, blur, noise, placement and image size vary from image to image
    independently of the label, so that telling forgeries apart requires
    comparing handwriting with the writer's genuine samples.

    Parameters
    ----------
    n_writers : int, default=10
        Number of writers.
    n_genuine : int, default=12
        Genuine signatures per writer (at least 2, to make a genuine pair).
    n_forgeries : int, default=12
        Skilled forgeries per writer.
    image_size : tuple of int (height, width), default=(120, 240)
        Typical image size; each image's height and width vary by up to 15%.
    forgery_strength : float, default=1.0
        How much forgeries deviate from the writer's style: 0 leaves only
        the genuine-like variation, larger values make forgeries easier to
        detect.
    random_state : int, RandomState instance or None, default=None
        Pass an int for the same images on every call. Writer ``i`` depends
        only on the seed, not on ``n_writers``.

    Returns
    -------
    data : :class:`~sklearn.utils.Bunch`
        Dictionary-like object with the attributes:

        images : list of ndarray of uint8, shape (height, width)
            Grayscale images, dark ink on a light background, sizes vary.
        writer : ndarray of str, shape (n_images,)
            Writer id of each image (``"0"``, ``"1"``, ...).
        genuine : ndarray of bool, shape (n_images,)
            True for a genuine signature, False for a forgery.
        paths : None
            There are no files (:func:`make_pairs` then pairs the images).
        layout : str
            ``"synthetic"``.

        Images are ordered by writer, genuine first, as in
        :func:`load_signatures`.

    See Also
    --------
    load_signatures : The same fields for a data set on disk.
    make_pairs : Turn the result into labelled pairs.

    Examples
    --------
    >>> from skseg.datasets import make_synthetic_signatures
    >>> data = make_synthetic_signatures(n_writers=2, n_genuine=3, n_forgeries=2,
    ...                                  random_state=0)
    >>> len(data.images), data.images[0].dtype, data.images[0].ndim
    (10, dtype('uint8'), 2)
    >>> data.writer
    array(['0', '0', '0', '0', '0', '1', '1', '1', '1', '1'], dtype='<U1')
    >>> data.genuine
    array([ True,  True,  True, False, False,  True,  True,  True, False, False])
    """
    if len(image_size) != 2 or not all(
            isinstance(s, Integral) and s >= 32 for s in image_size):
        raise ValueError(
            f"image_size must be a (height, width) pair of ints >= 32; got {image_size!r}."
        )
    rng = check_random_state(random_state)
    # One seed per writer: writer i is the same whatever n_writers is.
    seeds = rng.randint(np.iinfo(np.int32).max, size=n_writers)

    images, writer, genuine = [], [], []
    for i, seed in enumerate(seeds):
        writer_rng = np.random.RandomState(seed)
        style = _writer(writer_rng)
        # 1 to 3 forgers per writer, each with their own systematic errors.
        forgers = [_forger(style, writer_rng, forgery_strength)
                   for _ in range(writer_rng.randint(1, 4))]
        for j in range(-n_genuine, n_forgeries):
            forged = j >= 0
            strokes = _strokes(forgers[j % len(forgers)] if forged else style,
                               writer_rng, forged, forgery_strength)
            images.append(_render(strokes, writer_rng, image_size))
            writer.append(str(i))
            genuine.append(not forged)
    return Bunch(
        images=images,
        writer=np.array(writer, dtype=str),
        genuine=np.array(genuine, dtype=bool),
        paths=None,
        layout="synthetic",
    )
