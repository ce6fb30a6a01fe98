// Types for corpus.mjs (the tokenizer corpus and JS-side references; see that file).

export interface CorpusItem {
  name: string;
  bytes: Buffer;
  /** parse special-token text (special=true) when tokenizing this text */
  special: boolean;
  /** "file": a source file; "edge": a hand-written or random edge case */
  kind: "file" | "edge";
  /** "t<index>" */
  id: string;
}

export interface QwenVocab {
  tj: { added_tokens: Array<{ id: number; content: string; special: boolean }>; [key: string]: unknown };
  /** N_VOCAB tokens, [PADn] past the tokenizer */
  tokens: string[];
  /** llama.cpp token types: 1 normal, 3 control, 4 user-defined, 5 unused */
  types: number[];
  merges: string[];
}

export interface UnicodeData {
  root: string;
  inc: string;
  /** [first codepoint, llama.cpp category flags], sorted */
  ranges: Array<[number, number]>;
  /** llama.cpp's \s codepoints */
  wsList: number[];
}

export interface LenmlTokenizer {
  encode(text: string, options?: { add_special_tokens?: boolean }): number[];
}

export const ROOT: string;
export const N_VOCAB: number;
export function qwenVocab(): QwenVocab;
export function lp(s: string | Uint8Array): Buffer;
export function writeVocabDump(file: string, vocab?: QwenVocab): void;
export function driverTexts(items: ReadonlyArray<{ id: string; special: boolean; bytes: Uint8Array }>): Buffer;
export function buildCorpus(options?: { maxBytes?: number; root?: string; extra?: string | false }): { items: CorpusItem[]; nFiles: number };
export function describeFiles(items: readonly CorpusItem[]): string;
export function llamaDecode(bytes: Uint8Array): number[];
export function strOf(cpts: readonly number[]): string;
export function utf8Of(cpts: readonly number[]): number[];
export function isValidUtf8(bytes: Uint8Array): boolean;
export function loadUnicodeData(root?: string): UnicodeData;
export function jsDataCauses(bytes: Uint8Array, ranges?: Array<[number, number]>): string[];
export function lenmlReferences(vocab?: QwenVocab): { special: LenmlTokenizer; plain: LenmlTokenizer; nfc: LenmlTokenizer };
export function lenmlEncode(tok: LenmlTokenizer, str: string): number[];
