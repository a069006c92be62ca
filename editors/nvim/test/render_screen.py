#!/usr/bin/env python3
"""Renders a Neovim screen grab (screen.lua's grid, as JSON) to PNG, and checks that a
committed PNG was rendered from the grid the test sees now.

Usage:
  render_screen.py update GRID.json PNG   draws the grid into PNG (needs Pillow and DejaVu
                                          Sans Mono; exits 3 with a message when either is missing)
  render_screen.py check GRID.json PNG    exits 1 unless PNG's `ratchet-grid-sha256` text chunk
                                          is the grid's hash (pure Python), then draws the grid
                                          into a temporary file when it can, so the drawing code
                                          runs too (a missing Pillow or font only prints a note)

The hash covers the grid's text and colours (canonical JSON), not the font or Pillow, so the
check never fails because a machine renders glyphs differently, only when the screen changed.
"""
import hashlib
import json
import os
import struct
import sys
import tempfile
import zlib

HASH_KEY = "ratchet-grid-sha256"
FONT_SIZE = 16
PADDING = 10
FONT_FILES = {
    "regular": "DejaVuSansMono.ttf",
    "bold": "DejaVuSansMono-Bold.ttf",
    "italic": "DejaVuSansMono-Oblique.ttf",
    "bold_italic": "DejaVuSansMono-BoldOblique.ttf",
}
FONT_DIRS = ["", "/usr/share/fonts/truetype/dejavu/", "/usr/share/fonts/dejavu/", "/usr/share/fonts/TTF/"]
SKIPPED = 3


def grid_hash(grid):
    canonical = json.dumps(grid, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def png_text_chunks(path):
    """The tEXt chunks of a PNG file, as a dict (no Pillow needed)."""
    with open(path, "rb") as f:
        data = f.read()
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError(f"{path} is not a PNG file")
    chunks, pos = {}, 8
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        if kind == b"tEXt" and b"\0" in body:
            key, value = body.split(b"\0", 1)
            chunks[key.decode("latin-1")] = value.decode("latin-1")
        elif kind == b"zTXt" and b"\0" in body:
            key, value = body.split(b"\0", 1)
            chunks[key.decode("latin-1")] = zlib.decompress(value[1:]).decode("latin-1")
        pos += 12 + length
    return chunks


def colour(value, fallback):
    """An RGB colour as an int, `fallback` when unset (missing or -1)."""
    return fallback if value is None or value < 0 else value


def rgb(value):
    return ((value >> 16) & 0xFF, (value >> 8) & 0xFF, value & 0xFF)


def load_fonts(ImageFont):
    fonts = {}
    for style, name in FONT_FILES.items():
        for folder in FONT_DIRS:
            try:
                fonts[style] = ImageFont.truetype(folder + name, FONT_SIZE)
                break
            except OSError:
                continue
    if "regular" not in fonts:
        return None
    for style in FONT_FILES:
        fonts.setdefault(style, fonts["regular"])
    return fonts


def render(grid, out_path):
    try:
        from PIL import Image, ImageDraw, ImageFont
        from PIL.PngImagePlugin import PngInfo
    except ImportError:
        print("render_screen: drawing SKIPPED: Pillow is not installed", file=sys.stderr)
        return SKIPPED
    fonts = load_fonts(ImageFont)
    if fonts is None:
        print("render_screen: drawing SKIPPED: DejaVu Sans Mono not found (fonts-dejavu-core)", file=sys.stderr)
        return SKIPPED
    regular = fonts["regular"]
    ascent, descent = regular.getmetrics()
    cell_w = round(regular.getlength("M"))
    cell_h = ascent + descent
    width, height = grid["width"], grid["height"]
    default = grid.get("default") or {}
    default_fg = colour(default.get("fg"), 0xE0E2EA)
    default_bg = colour(default.get("bg"), 0x14161B)
    image = Image.new("RGB", (width * cell_w + 2 * PADDING, height * cell_h + 2 * PADDING), rgb(default_bg))
    draw = ImageDraw.Draw(image)
    for r, row in enumerate(grid["rows"]):
        y = PADDING + r * cell_h
        for c, (text, hl) in enumerate(row):
            attrs = grid["hl"].get(str(hl), {})
            fg = colour(attrs.get("foreground"), default_fg)
            bg = colour(attrs.get("background"), default_bg)
            if attrs.get("reverse"):
                fg, bg = bg, fg
            x = PADDING + c * cell_w
            if bg != default_bg:
                draw.rectangle([x, y, x + cell_w - 1, y + cell_h - 1], fill=rgb(bg))
            if text.strip():
                style = ("bold_" if attrs.get("bold") else "") + ("italic" if attrs.get("italic") else "")
                font = fonts[style.rstrip("_") or "regular"]
                draw.text((x, y), text, font=font, fill=rgb(fg))
            if attrs.get("underline") or attrs.get("undercurl"):
                sp = colour(attrs.get("special"), fg)
                draw.line([x, y + ascent + 1, x + cell_w - 1, y + ascent + 1], fill=rgb(sp))
    info = PngInfo()
    info.add_text(HASH_KEY, grid_hash(grid))
    image.save(out_path, pnginfo=info)
    return 0


def check(grid, png_path):
    try:
        recorded = png_text_chunks(png_path).get(HASH_KEY)
    except (OSError, ValueError) as e:
        print(f"render_screen: cannot read {png_path}: {e}", file=sys.stderr)
        return 1
    if recorded != grid_hash(grid):
        print(f"render_screen: {png_path} was rendered from another screen than the test shows now; "
              "rerun with RATCHET_NVIM_UPDATE_SNAPSHOT=1 to redraw it", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory() as tmp:
        drawn = render(grid, os.path.join(tmp, "screen.png"))
    return 0 if drawn in (0, SKIPPED) else drawn


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("update", "check"):
        print(__doc__, file=sys.stderr)
        return 2
    with open(sys.argv[2], encoding="utf-8") as f:
        grid = json.load(f)
    return render(grid, sys.argv[3]) if sys.argv[1] == "update" else check(grid, sys.argv[3])


if __name__ == "__main__":
    sys.exit(main())
