// Decoded 8-bit pixels, interleaved (HWC) as image decoders produce them, before they become a tensor.
export interface Pixels {
  data: Uint8Array;
  width: number;
  height: number;
  channels: number;
}
