// The script of the browser harness's page (tests/src/browser.rs), run by headless Chromium.
// CHECKS is set before this script: {"images": [url], "srcsets": [{"src", "srcset", "sizes"}],
// "videos": [{"src": url, "seekTo": s}]}.
// Every element is created here, its listeners attached before its src is set, so no event can
// fire before the page listens. The report goes back by POST /report on the page's own server.
'use strict';

const PER_ELEMENT_MS = 20000;

function within(ms, promise, onTimeout) {
    return Promise.race([promise, new Promise((resolve) => setTimeout(() => resolve(onTimeout()), ms))]);
}

// The pixel size of the resource at `url`, loaded as a plain image (no srcset, so no density
// correction); the browser takes it from its cache when it has just shown it.
async function pixelSize(url) {
    if (!url) {
        return [0, 0];
    }
    const plain = new Image();
    const settled = new Promise((resolve) => {
        plain.addEventListener('load', resolve, { once: true });
        plain.addEventListener('error', resolve, { once: true });
    });
    plain.src = url;
    await within(PER_ELEMENT_MS, settled, () => null);
    return [plain.naturalWidth, plain.naturalHeight];
}

// `image` is a URL, or {src, srcset, sizes} for a responsive image.
async function checkImage(image) {
    const img = document.createElement('img');
    const settled = new Promise((resolve) => {
        img.addEventListener('load', resolve, { once: true });
        img.addEventListener('error', resolve, { once: true });
    });
    let src = image;
    if (typeof image === 'object') {
        // sizes before srcset, and both before src: the choice is made once, with all three.
        img.sizes = image.sizes;
        img.srcset = image.srcset;
        src = image.src;
    }
    img.src = src;
    document.body.appendChild(img);
    await within(PER_ELEMENT_MS, settled, () => null);
    // decode() settles only once the bytes decoded into a bitmap, or were found undecodable.
    let decoded = false;
    let error = null;
    try {
        await within(PER_ELEMENT_MS, img.decode(), () => {
            throw new Error('decode() did not settle');
        });
        decoded = true;
    } catch (e) {
        error = String(e);
    }
    const [pixelWidth, pixelHeight] = decoded ? await pixelSize(img.currentSrc) : [0, 0];
    return {
        src,
        complete: img.complete,
        naturalWidth: img.naturalWidth,
        naturalHeight: img.naturalHeight,
        decoded,
        error,
        currentSrc: img.currentSrc,
        pixelWidth,
        pixelHeight,
    };
}

function checkVideo(src, seekTo) {
    const video = document.createElement('video');
    const report = {
        src,
        seekTo,
        metadata: false,
        duration: null,
        seeked: false,
        seekedAt: null,
        played: false,
        currentTime: null,
        error: null,
    };
    const finished = new Promise((resolve) => {
        video.addEventListener('error', () => {
            const e = video.error;
            report.error = e ? `MediaError ${e.code}: ${e.message}` : 'error';
            resolve();
        });
        video.addEventListener('loadedmetadata', () => {
            report.metadata = true;
            report.duration = video.duration;
            video.currentTime = seekTo;
        }, { once: true });
        video.addEventListener('seeked', () => {
            report.seeked = true;
            report.seekedAt = video.currentTime;
            video.play().catch((e) => {
                report.error = `play(): ${e}`;
                resolve();
            });
        }, { once: true });
        // Played from the seek point: time moved on from where the seek left it, by more than a
        // frame, without going back to the start.
        video.addEventListener('timeupdate', () => {
            if (report.seeked && video.currentTime > report.seekedAt + 0.25) {
                report.played = true;
                video.pause();
                resolve();
            }
        });
    });
    video.muted = true;
    video.preload = 'auto';
    video.src = src;
    document.body.appendChild(video);
    return within(PER_ELEMENT_MS, finished, () => null).then(() => {
        report.currentTime = video.currentTime;
        return report;
    });
}

async function run() {
    const images = await Promise.all(CHECKS.images.map(checkImage));
    const srcsets = await Promise.all(CHECKS.srcsets.map(checkImage));
    const videos = await Promise.all(CHECKS.videos.map((v) => checkVideo(v.src, v.seekTo)));
    return { images, srcsets, videos, error: null };
}

function send(report) {
    return fetch('/report', { method: 'POST', body: JSON.stringify(report) });
}

run().then(send, (e) => send({ images: [], videos: [], error: String(e && e.stack || e) }));
