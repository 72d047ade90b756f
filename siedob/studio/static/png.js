// Grey-scale PNG encoding (8- or 16-bit) so the page can send and download label, instance and mask maps
// in the authors' file formats. zlib data comes from the browser's CompressionStream.
"use strict";

const PNG = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = table[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }
  function chunk(type, data) {
    const out = new Uint8Array(12 + data.length);
    const view = new DataView(out.buffer);
    view.setUint32(0, data.length);
    for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
    out.set(data, 8);
    view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
    return out;
  }
  async function zlib(bytes) {
    const stream = new Blob([bytes]).stream().pipeThrough(new CompressionStream("deflate"));
    return new Uint8Array(await new Response(stream).arrayBuffer());
  }
  // values: typed array of width*height samples; depth 8 or 16. Returns a Blob (image/png).
  async function encodeGray(values, width, height, depth) {
    const bpp = depth / 8;
    const raw = new Uint8Array(height * (1 + width * bpp));
    let o = 0;
    for (let y = 0; y < height; y++) {
      raw[o++] = 0;
      for (let x = 0; x < width; x++) {
        const v = values[y * width + x];
        if (depth === 16) raw[o++] = (v >>> 8) & 0xff;
        raw[o++] = v & 0xff;
      }
    }
    const ihdr = new Uint8Array(13);
    const view = new DataView(ihdr.buffer);
    view.setUint32(0, width);
    view.setUint32(4, height);
    ihdr[8] = depth;
    ihdr[9] = 0;
    const signature = new Uint8Array([137, 80, 78, 71, 13, 10, 26, 10]);
    const parts = [signature, chunk("IHDR", ihdr), chunk("IDAT", await zlib(raw)), chunk("IEND", new Uint8Array(0))];
    return new Blob(parts, { type: "image/png" });
  }
  return { encodeGray };
})();
