/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * libxml2 for the CLI, loaded the first time a verb needs it (define/create FILE in another
 * encoding, snapshot-create XMLFILE). Linked at start, libxml2 and what it pulls in (ICU,
 * libstdc++, liblzma, zlib) cost every `tether` command some 5 ms of loading and relocation.
 */
#ifndef TT_CLI_LAZYXML_H
#define TT_CLI_LAZYXML_H

#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlerror.h>
#include <libxml/xpath.h>

/* The functions the CLI calls, with libxml2's own prototypes. */
struct lazyxml {
        __typeof__(&xmlReadMemory) read_memory;
        __typeof__(&xmlGetLastError) get_last_error;
        __typeof__(&xmlResetLastError) reset_last_error;
        __typeof__(&xmlFreeDoc) free_doc;
        __typeof__(&xmlDocDumpMemoryEnc) dump_memory_enc;
        xmlFreeFunc free;
        __typeof__(&xmlXPathNewContext) xpath_new_context;
        __typeof__(&xmlXPathEvalExpression) xpath_eval_expression;
        __typeof__(&xmlXPathFreeObject) xpath_free_object;
        __typeof__(&xmlXPathFreeContext) xpath_free_context;
};

/* libxml2's functions, loaded on the first call; NULL after printing why it cannot be loaded. */
const struct lazyxml *lazyxml(void);

#endif
