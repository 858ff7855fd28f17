/* SPDX-License-Identifier: GPL-2.0-or-later */
/* libxml2, loaded when first needed (lazyxml.h). */
#include "cli/lazyxml.h"
#include "cli/cli.h"

#include <dlfcn.h>
#include <stdbool.h>
#include <stddef.h>

#define LAZYXML_SONAME "libxml2.so.2"

const struct lazyxml *lazyxml(void)
{
        static struct lazyxml x;
        static bool loaded;
        static const struct {
                const char *name;
                size_t offset;
        } syms[] = {
            {"xmlReadMemory", offsetof(struct lazyxml, read_memory)},
            {"xmlGetLastError", offsetof(struct lazyxml, get_last_error)},
            {"xmlResetLastError", offsetof(struct lazyxml, reset_last_error)},
            {"xmlFreeDoc", offsetof(struct lazyxml, free_doc)},
            {"xmlDocDumpMemoryEnc", offsetof(struct lazyxml, dump_memory_enc)},
            {"xmlXPathNewContext", offsetof(struct lazyxml, xpath_new_context)},
            {"xmlXPathEvalExpression", offsetof(struct lazyxml, xpath_eval_expression)},
            {"xmlXPathFreeObject", offsetof(struct lazyxml, xpath_free_object)},
            {"xmlXPathFreeContext", offsetof(struct lazyxml, xpath_free_context)},
        };
        xmlFreeFunc *(*free_of)(void);
        xmlFreeFunc *freep;
        void *h;

        if (loaded)
                return &x;
        /* Never unloaded: the process ends soon after. */
        h = dlopen(LAZYXML_SONAME, RTLD_NOW | RTLD_LOCAL);
        if (h == NULL) {
                cli_error("cannot load %s (the libxml2 package) to read XML: %s", LAZYXML_SONAME,
                          dlerror());
                return NULL;
        }
        for (size_t i = 0; i < sizeof(syms) / sizeof(syms[0]); i++) {
                void *f = dlsym(h, syms[i].name);

                if (f == NULL) {
                        cli_error("%s has no %s", LAZYXML_SONAME, syms[i].name);
                        return NULL;
                }
                *(void **)((char *)&x + syms[i].offset) = f;
        }
        /* xmlFree is a variable, reached through __xmlFree() in thread-enabled builds. */
        *(void **)&free_of = dlsym(h, "__xmlFree");
        freep = free_of ? free_of() : (xmlFreeFunc *)dlsym(h, "xmlFree");
        if (freep == NULL || *freep == NULL) {
                cli_error("%s has no xmlFree", LAZYXML_SONAME);
                return NULL;
        }
        x.free = *freep;
        loaded = true;
        return &x;
}
