/*
 * The KV cache page in tokens. KvCache.PAGE (Java) is the definition; C needs a compile-time
 * constant for its loops, so the kernels share this copy, and each library exports it (pageSize)
 * so that NativeLibraries.load refuses a library built with another page.
 */
#ifndef TG_PAGE_H
#define TG_PAGE_H

#define PAGE 16

#endif
