"""
==============================================
Preprocessing: from scans to canvases
==============================================

:class:`~skseg.SignaturePreprocessor` turns scans of any size into canvases
of one size: grayscale, background removed with Otsu's threshold, cropped to
the ink, centred with its aspect ratio kept, inverted so that ink is high and
the background exactly 0. This example shows the steps' effect, and why the
background removal matters.
"""

# %%
# Scans in, canvases out
# ----------------------
# Synthetic scans vary in size, paper grey level, gradient, ink darkness and
# placement, like real ones. The canvases keep only the strokes.
import matplotlib.pyplot as plt
import numpy as np

from skseg import SignaturePreprocessor
from skseg.datasets import make_synthetic_signatures

data = make_synthetic_signatures(n_writers=1, n_genuine=4, n_forgeries=0, random_state=1)
prep = SignaturePreprocessor(canvas_size=(64, 96))
canvases = prep.transform(data.images)  # a list of images -> (n_images, H, W)
print(canvases.shape, canvases.dtype, "background value:", canvases[0, 0, 0])

fig, axes = plt.subplots(2, 4, figsize=(10, 3.5))
for k in range(4):
    axes[0, k].imshow(data.images[k], cmap="gray", vmin=0, vmax=255)
    axes[0, k].set_title(f"scan {data.images[k].shape}", fontsize=9)
    axes[1, k].imshow(canvases[k], cmap="gray", vmin=0, vmax=255)
    axes[1, k].set_title(f"canvas {canvases[k].shape}", fontsize=9)
for ax in axes.ravel():
    ax.set_axis_off()
fig.tight_layout()

# %%
# The background carries no handwriting, but it can carry the label
# ------------------------------------------------------------------
# In CEDAR, genuine signatures were scanned on greyer paper than the
# forgeries. A network that sees the background can tell them apart without
# looking at the handwriting, and fails on any other scanner. Below, the same
# strokes are put on a grey and on a white paper. With the background
# removed (the default) the paper becomes exactly 0 in both canvases; with
# ``remove_background=False`` the paper level stays in every background pixel
# and tells the two apart.
scan = data.images[0].astype(float)
paper = np.percentile(scan, 90)  # the paper level of this scan
ink = np.clip((paper - scan) / paper, 0, 1)  # 0 on paper, up to 1 in strokes
grey_paper = np.rint(238 * (1 - ink)).astype(np.uint8)
white_paper = np.rint(252 * (1 - ink)).astype(np.uint8)

removed = SignaturePreprocessor(canvas_size=(64, 96)).transform([grey_paper, white_paper])
kept = SignaturePreprocessor(canvas_size=(64, 96), remove_background=False).transform(
    [grey_paper, white_paper]
)
for name, pair in [("remove_background=True", removed), ("remove_background=False", kept)]:
    a, b = pair.astype(int)
    print(f"{name}: background (median) level {np.median(a):.0f} vs {np.median(b):.0f}, "
          f"mean level {a.mean():.1f} vs {b.mean():.1f}")

fig, axes = plt.subplots(2, 3, figsize=(10, 3.5))
rows = [("grey paper", grey_paper), ("white paper", white_paper)]
for r, (label, image) in enumerate(rows):
    axes[r, 0].imshow(image, cmap="gray", vmin=0, vmax=255)
    axes[r, 0].set_title(label, fontsize=9)
    axes[r, 1].imshow(removed[r], cmap="gray", vmin=0, vmax=255)
    axes[r, 1].set_title("remove_background=True", fontsize=9)
    axes[r, 2].imshow(kept[r], cmap="gray", vmin=0, vmax=255)
    axes[r, 2].set_title("remove_background=False", fontsize=9)
for ax in axes.ravel():
    ax.set_axis_off()
fig.tight_layout()

# %%
# Ink levels
# ----------
# ``ink_contrast`` sets the grey levels of the ink after background removal:
# ``"stretch"`` (default) maps the faintest ink kept to 1 and the darkest to
# 255, so a lighter or darker scan of the same strokes gives the same
# canvas; ``"equalize"`` maps each level to its rank among the ink pixels,
# which also undoes a contrast curve; ``"keep"`` keeps ``255 - grey`` as
# SigNet's preprocessing does; ``"binary"`` keeps only the shape.
fig, axes = plt.subplots(1, 4, figsize=(10, 1.8))
for ax, mode in zip(axes, ["stretch", "equalize", "keep", "binary"]):
    canvas = SignaturePreprocessor(canvas_size=(64, 96), ink_contrast=mode).transform(
        [data.images[0]]
    )[0]
    ax.imshow(canvas, cmap="gray", vmin=0, vmax=255)
    ax.set_title(f'ink_contrast="{mode}"', fontsize=9)
    ax.set_axis_off()
fig.tight_layout()
plt.show()
