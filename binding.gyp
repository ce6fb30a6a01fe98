# Build of the Node-API addon build/Release/moe_engine.node (node-gyp; run by `npm install`
# through node-gyp-build, or `npm run build:native`). Sources are every .cpp under
# native/{core,kernels,model,models,engine,addon} (the engine and its Node-API glue): gyp has no
# glob, so a node one-liner lists them at configure time (re-run configure after adding a file;
# test/run.mjs does when the list changed). Baseline x86-64 flags only: per-ISA kernel files
# enable their instruction sets themselves.
{
  "targets": [
    {
      "target_name": "moe_engine",
      "sources": [
        "<!@(node -p \"['core','kernels','model','models','engine','addon'].flatMap(d=>require('fs').readdirSync('native/'+d).filter(f=>f.endsWith('.cpp')).sort().map(f=>'native/'+d+'/'+f)).join(' ')\")"
      ],
      "include_dirs": [
        "native",
        "<!(node -p \"require('node-addon-api').include_dir\")"
      ],
      "defines": [
        "NAPI_VERSION=8",
        "NAPI_CPP_EXCEPTIONS",
        "NODE_ADDON_API_CPP_EXCEPTIONS_ALL",
        "MOE_ENGINE_VERSION=\"<!(node -p \"require('./package.json').version\")\""
      ],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti", "-std=gnu++17"],
      "cflags_cc": ["-std=c++17", "-O3", "-ffp-contract=off", "-Wall", "-Wextra", "-fexceptions"],
      "ldflags": ["-pthread"]
    }
  ]
}
