#!/usr/bin/env bash
# Install the browser of the browser test (tests/test_browser.py): Debian's
# headless-capable Chromium and its WebDriver, /usr/bin/chromium and
# /usr/bin/chromedriver.
#
#   scripts/install_browser.sh
#
# Idempotent: when all are installed it only checks and exits at once. When
# one is missing it refreshes the package lists (apt-get update) and installs
# the packages "chromium", "chromium-driver" and "fonts-nanum" (as root;
# otherwise it says which command to run). Exits non-zero when the browser
# cannot be installed.
set -euo pipefail

# fonts-nanum: Korean glyphs, for the test that runs the admin in Korean (10 MB).
PACKAGES=(chromium chromium-driver fonts-nanum)
started=$SECONDS

installed() {
    dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

missing=()
for package in "${PACKAGES[@]}"; do
    installed "${package}" || missing+=("${package}")
done

if [ ${#missing[@]} -gt 0 ]; then
    if ! command -v apt-get >/dev/null; then
        echo "No apt-get here: install Chromium and chromedriver by other means, at" \
            "/usr/bin/chromium and /usr/bin/chromedriver." >&2
        exit 1
    fi
    if [ "$(id -u)" -ne 0 ]; then
        echo "Missing Debian packages: ${missing[*]}. Install them as root:" >&2
        echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
        exit 1
    fi
    echo "Installing ${missing[*]} (Debian packages)..."
    output=$(mktemp)
    trap 'rm -f "${output}"' EXIT
    if ! {
        DEBIAN_FRONTEND=noninteractive apt-get update -qq &&
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
                -o DPkg::Lock::Timeout=300 "${missing[@]}"
    } >"${output}" 2>&1; then
        cat "${output}" >&2
        echo "Could not install ${missing[*]}." >&2
        exit 1
    fi
    echo "Installed ${missing[*]} in $((SECONDS - started)) s."
fi

for binary in /usr/bin/chromium /usr/bin/chromedriver; do
    if [ ! -x "${binary}" ]; then
        echo "${binary} is missing although the packages are installed." >&2
        exit 1
    fi
done
# One line for the logs; it also proves that the binaries start.
echo "$(/usr/bin/chromium --version 2>/dev/null | head -n 1); $(/usr/bin/chromedriver --version | head -n 1)"
