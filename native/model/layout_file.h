// A layout file: the relaid-out matrices of one GGUF (model/weights.h: target_layout), written
// once into a cache folder and mapped read-only by every later load. The weights then stay
// clean, file-backed pages the OS can share between processes and reclaim, and a load with a
// warm page cache does no relayout work. Without one, relayout_weights rewrites the matrices in
// place (anonymous copy-on-write pages).
//
// File: <dir>/<identity>.v<kLayoutVersion>.stlayout, where the identity hashes the GGUF's size,
// modification time, first MiB and 16 samples of its data. Layout: a header page (magic,
// version, the GGUF's size, mtime and identity, and one entry per tensor: its offset in the GGUF,
// its type and layout, the size of each of its matrices, their offset and stride here; after the
// entries the GGUF's absolute path), then the matrices, bytes exactly as the in-place relayout
// leaves them: each layer's experts as one 4096-byte-aligned extent each (its gate, up and down,
// each at a 4096-byte boundary: one read brings an expert in), every other tensor at a 4096-byte
// boundary. Written to a temporary name and renamed when complete; a file whose header, entries or
// size do not match is rebuilt, never used. Every load scans the folder and removes the layout
// files whose GGUF (by the recorded path) is gone or changed, and the temporary files of crashed
// builds; a build removes the files of other layout versions.
#pragma once
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "model/gguf.h"
#include "model/tensor.h"

namespace moe {

constexpr uint32_t kLayoutVersion = 2;

struct LayoutFileResult {
    std::unique_ptr<MappedFile> map;  // the layout file, mapped read-only (keep it for the tensors' lifetime)
    std::string path;
    bool built = false;           // written by this load (else an existing one was valid)
    uint64_t bytes = 0;           // relaid-out bytes it holds
    std::string rebuilt_because;  // why an existing file was not used ("" when none existed or it was used)
    double huge_pages = 0;        // the share of it mapped by 2 MB page-table entries after the load (0..1)
};

// Points every relayout candidate of `matrices` (as relayout_weights chooses them) at its
// relaid-out copy in the layout file for `gguf` in `dir`, building the file first when there is
// no valid one. Sets Tensor::data, nb2 (the extent stride) and layout. Throws moe::Error("io"/"no_space", ...) when
// the file cannot be built (the caller falls back to the in-place relayout); the tensors are then
// untouched. Returns map == nullptr when there is nothing to relay out.
// `progress` (may be empty) is called with the fraction written, once per percent, while building.
// `cancel` (may be null) is checked between the build's items: once true, the build threads stop,
// the temporary file is removed and moe::Error("cancelled") is thrown (the caller must not fall
// back then).
LayoutFileResult use_layout_file(const std::vector<Tensor*>& matrices, const GgufFile& gguf, const std::string& dir,
                                 const std::function<void(double)>& progress = {}, const std::atomic<bool>* cancel = nullptr,
                                 bool map_all = true);

}  // namespace moe
