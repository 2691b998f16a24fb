"""QR codes as a matrix of modules and as SVG: the one piece of machinery behind a device's provisioning
QR (`loa device add`, printed and saved as PNG by cli/admin.py) and the villagers' feedback QR codes
(the desk's printable sheet, services/feedback.py). `qrcode` is imported when a code is made, so
importing this costs nothing on a command that makes none."""

from __future__ import annotations


def qr_matrix(text: str, border: int = 4) -> list[list[bool]]:
    """The code's modules, dark as True, `border` light modules around (4 is the standard's quiet zone)."""
    import qrcode

    qr = qrcode.QRCode(error_correction=qrcode.constants.ERROR_CORRECT_L, border=border)
    qr.add_data(text.encode("utf-8"))
    qr.make(fit=True)
    return [list(row) for row in qr.get_matrix()]


def qr_svg(text: str, label: str = "") -> str:
    """The code as a small SVG document (one path, one unit per module): it prints sharp at any size,
    needs no image library, and a page can put it inline under a Content-Security-Policy that refuses
    inline styles (it has none). `label` becomes its accessible name."""
    matrix = qr_matrix(text)
    side = len(matrix)
    runs: list[str] = []
    for y, row in enumerate(matrix):
        x = 0
        while x < side:
            if row[x]:
                start = x
                while x < side and row[x]:
                    x += 1
                runs.append(f"M{start} {y}h{x - start}v1h{start - x}z")
            else:
                x += 1
    name = label.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {side} {side}" role="img" aria-label="{name}" '
        f'shape-rendering="crispEdges"><rect width="{side}" height="{side}" fill="#fff"/>'
        f'<path fill="#000" d="{"".join(runs)}"/></svg>'
    )
