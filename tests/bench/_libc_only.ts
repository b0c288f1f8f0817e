// The cost of ffi/libc.ts alone: with --allow-ffi it binds its whole symbol table at load.
import "../../ffi/libc.ts";
