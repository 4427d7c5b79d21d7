<?xml version="1.0" encoding="utf-8"?>
<!-- illhub: shows an Atom feed as a readable page when it is opened in a browser
     (feed readers ignore this stylesheet and read the feed itself). -->
<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform" xmlns:atom="http://www.w3.org/2005/Atom">
  <xsl:output method="html" encoding="utf-8" indent="yes" doctype-system="about:legacy-compat"/>
  <xsl:template match="/atom:feed">
    <html lang="en">
      <head>
        <meta charset="utf-8"/>
        <meta name="viewport" content="width=device-width, initial-scale=1"/>
        <title><xsl:value-of select="atom:title"/> (feed)</title>
        <style>
          body { font-family: system-ui, sans-serif; max-width: 48rem; margin: 0 auto; padding: 1rem; color: #1b1b1b; line-height: 1.5; }
          .about { background: #fbf6ef; border-left: 4px solid #7a3e00; padding: 0.6rem 1rem; }
          * { box-sizing: border-box; }
          code { background: #f3f6f9; padding: 0.1rem 0.3rem; overflow-wrap: anywhere; word-break: break-all; }
          body, h1, a, li, div { overflow-wrap: anywhere; }
          li { margin: 0.7rem 0; } a { color: #0a4f8f; } .meta { color: #4a4a4a; font-size: 0.9rem; }
        </style>
      </head>
      <body>
        <p class="about"><strong>This is a feed.</strong> Copy this page's address into a feed reader
          (Feedly, Inoreader, NetNewsWire, Outlook…) to be told about new resources on this list.
          <a href="{atom:link[@rel='alternate']/@href}">Back to the list</a>.</p>
        <h1><xsl:value-of select="atom:title"/></h1>
        <p>Feed address: <code><xsl:value-of select="atom:link[@rel='self']/@href"/></code></p>
        <ul>
          <xsl:for-each select="atom:entry">
            <li>
              <a href="{atom:link[@rel='alternate']/@href}"><xsl:value-of select="atom:title"/></a>
              <div class="meta"><xsl:value-of select="atom:author/atom:name"/> · <xsl:value-of select="substring(atom:published, 1, 10)"/></div>
              <div><xsl:value-of select="atom:summary"/></div>
            </li>
          </xsl:for-each>
        </ul>
      </body>
    </html>
  </xsl:template>
</xsl:stylesheet>
